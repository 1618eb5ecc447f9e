package redisstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// sameBytes tells whether a and b hold the same bytes, at once when they
// are the same slice (a payload the redaction left untouched).
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return bytes.Equal(a, b)
}

// encodeLogEntry is json.Marshal(e), written by hand: encoding/json would
// re-validate and compact the request payload (valid JSON already, and
// the largest part) and reach every field and header through reflection.
// The payload is kept as it is; everything else is byte for byte what
// json.Marshal writes (TestEncodeLogEntry).
func encodeLogEntry(e *webhook.LogEntry) ([]byte, error) {
	if math.IsInf(e.Duration, 0) || math.IsNaN(e.Duration) {
		return nil, fmt.Errorf("log entry duration %v is not a JSON number", e.Duration)
	}
	if y := e.CreatedAt.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("log entry time %v is outside of years 0-9999", e.CreatedAt)
	}
	size := 256 + len(e.EventID) + len(e.Chain) + len(e.URL) + len(e.RequestData) + len(e.ResponseBody) + len(e.InternalError)
	for _, m := range []map[string]string{e.RequestHeaders, e.ResponseHeaders} {
		for k, v := range m {
			size += len(k) + len(v) + 6
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"hook":`...)
	b = strconv.AppendInt(b, e.HookID, 10)
	b = append(b, `,"event":`...)
	b = appendJSONText(b, e.EventID)
	if e.Chain != "" {
		b = append(b, `,"chain":`...)
		b = appendJSONText(b, e.Chain)
	}
	b = append(b, `,"trigger":`...)
	b = appendJSONText(b, e.Trigger)
	b = append(b, `,"kind":`...)
	b = appendJSONText(b, e.Kind)
	b = append(b, `,"url":`...)
	b = appendJSONText(b, e.URL)
	b = append(b, `,"req_headers":`...)
	b = appendStringMap(b, e.RequestHeaders)
	b = append(b, `,"req_data":`...)
	if len(e.RequestData) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.RequestData...)
	}
	if e.Oversize {
		b = append(b, `,"oversize":true`...)
	}
	if e.Rendered {
		b = append(b, `,"rendered":true`...)
	}
	b = append(b, `,"resp_headers":`...)
	b = appendStringMap(b, e.ResponseHeaders)
	b = append(b, `,"resp_body":`...)
	b = appendJSONText(b, e.ResponseBody)
	b = append(b, `,"status":`...)
	b = appendJSONText(b, e.ResponseStatus)
	b = append(b, `,"duration":`...)
	b = appendJSONFloat(b, e.Duration)
	if e.InternalError != "" {
		b = append(b, `,"error":`...)
		b = appendJSONText(b, e.InternalError)
	}
	b = append(b, `,"at":"`...)
	b = e.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}

// appendJSONText appends s as encoding/json writes a string: a string of
// plain printable ASCII as it is, anything else (escapes, HTML characters,
// UTF-8 to check) through encoding/json.
func appendJSONText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringMap appends m as encoding/json writes it: keys sorted, nil
// as null.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONText(b, k)
		b = append(b, ':')
		b = appendJSONText(b, m[k])
	}
	return append(b, '}')
}

// appendJSONFloat appends f as encoding/json writes a float64 (finite).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// logEntryNumber reads a log append's reply: the new entry's stream ID.
func logEntryNumber(v any, hookID int64) (int64, error) {
	id, _ := v.(string)
	n, ok := logNumber(id)
	if !ok {
		return 0, fmt.Errorf("appending to the log of hook %d: unexpected entry id %q", hookID, id)
	}
	return n, nil
}

// logNumber turns a stream ID "<ms>-<seq>" into an entry number.
func logNumber(streamID string) (int64, bool) {
	ms, seq, ok := strings.Cut(streamID, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	q, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || q >= 1000 || m < 0 || m > (1<<62)/1000 {
		return 0, false
	}
	return m*1000 + q, true
}

// logStreamID is logNumber's inverse.
func logStreamID(n int64) string {
	return strconv.FormatInt(n/1000, 10) + "-" + strconv.FormatInt(n%1000, 10)
}
