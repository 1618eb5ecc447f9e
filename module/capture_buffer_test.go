package module

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// An event outlives the response it came from: an idle fan-out takes it
// from memory after the response's copy went back to the pool and the next
// response wrote over it. Its body must be its own (a race the detector
// found between a capture and the fan-out keeping the project's sample).
func TestCapturedEventKeepsItsBodyWhenTheBufferIsReused(t *testing.T) {
	c := &Capture{MaxBody: 1 << 20}
	tw := &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: httptest.NewRecorder()},
		maxBody: c.MaxBody}
	signal(tw.Header(), "push", "acme/api")
	tw.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(tw, pushBody); err != nil {
		t.Fatal(err)
	}
	ev, err := c.buildEvent(tw, httptest.NewRequest(http.MethodPost, "/push", nil), "")
	if err != nil {
		t.Fatal(err)
	}
	buf := tw.buf
	tw.release()
	buf.Reset() // the next response's copy, in the same buffer
	buf.WriteString(strings.Repeat("x", len(pushBody)))
	if string(ev.Body) != pushBody {
		t.Fatalf("the event's body became %q once its buffer was reused, want %q", ev.Body, pushBody)
	}
}
