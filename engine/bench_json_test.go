package engine

import "encoding/json"

func benchJSON(v any) ([]byte, error) { return json.Marshal(v) }
