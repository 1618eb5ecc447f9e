package api

import "net/http"

// WriteJSON answers v as JSON the way the API does (no-store, nosniff), for
// handlers that share its error shapes.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }
