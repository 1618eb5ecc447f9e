package module

import (
	"net/http"
	"strconv"
	"testing"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// benchWriter is a ResponseWriter that keeps nothing, so the benchmarks
// measure the capture's own work.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

var benchBody = func() []byte {
	b := []byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"`)
	for len(b) < 1022 {
		b = append(b, 'x')
	}
	return append(b, '"', '}')
}()

// BenchmarkCaptureNonEvent is the path every ordinary response takes:
// ServeHTTP wraps the writer, the decision at WriteHeader finds no signal,
// the body passes through uncopied.
func BenchmarkCaptureNonEvent(b *testing.B) {
	c := &Capture{MaxBody: DefaultMaxBody, logger: zap.NewNop()}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchBody)))
		w.WriteHeader(http.StatusOK)
		_, err := w.Write(benchBody)
		return err
	})
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/plain", nil)
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := c.ServeHTTP(w, req, next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTeeWriterDecision is the decision and copy of an event response
// (signal headers stripped, 1 KB body kept, last byte held back), without
// the enqueue.
func BenchmarkTeeWriterDecision(b *testing.B) {
	for _, tc := range []struct {
		name  string
		event bool
	}{{"non-event", false}, {"event", true}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h := w.h
				h.Set("Content-Type", "application/json")
				h.Set("Content-Length", strconv.Itoa(len(benchBody)))
				if tc.event {
					h.Set(HeaderEvent, "push")
					h.Set(HeaderProject, "acme/app")
					h.Set(HeaderRef, "refs/heads/main")
				}
				tw := &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, maxBody: DefaultMaxBody}
				tw.WriteHeader(http.StatusOK)
				_, _ = tw.Write(benchBody)
				if tw.isEvent() != tc.event {
					b.Fatal("wrong decision")
				}
				tw.completeResponse()
				tw.release()
			}
		})
	}
}
