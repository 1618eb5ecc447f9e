package module

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// BenchmarkCaptureRulesNonEvent is an ordinary response through a capture
// with four rules: one whose request matcher (method and path) matches and
// whose response matcher does not, three that do not match the request.
func BenchmarkCaptureRulesNonEvent(b *testing.B) {
	rule := func(method, path string, status int) *CaptureRule {
		return &CaptureRule{Name: path, Event: "issues", Project: "acme/api",
			matchers: caddyhttp.MatcherSets{{caddyhttp.MatchMethod{method}, caddyhttp.MatchPath{path}}},
			Response: &caddyhttp.ResponseMatcher{StatusCode: []int{status}}}
	}
	c := &Capture{MaxBody: DefaultMaxBody, logger: zap.NewNop(), Rules: []*CaptureRule{
		rule("GET", "/plain", 201),
		rule("POST", "/api/projects/*/*/issues", 201),
		rule("POST", "/api/projects/*/*/merge_requests", 201),
		rule("POST", "/api/projects/*/*/merge_requests/*/merge", 200),
	}}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchBody)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(benchBody)
		return err
	})
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/plain", nil)
	// Caddy's server puts a replacer in every request's context; matchers use it.
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := c.ServeHTTP(w, req, next); err != nil {
			b.Fatal(err)
		}
	}
}
