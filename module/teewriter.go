package module

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The response headers an app sets to announce an event. They are removed
// from every response before it reaches the client.
const (
	HeaderEvent     = "X-Webhook-Event"
	HeaderProject   = "X-Webhook-Project"
	HeaderNamespace = "X-Webhook-Namespace"
	HeaderRef       = "X-Webhook-Ref"
)

var signalHeaders = [...]string{HeaderEvent, HeaderProject, HeaderNamespace, HeaderRef}

// teeWriter decides at WriteHeader time, from status and headers alone,
// whether a response announces an event. A response that does not passes
// through untouched; one that does streams to the client unchanged while a
// capped copy of its body is kept for the payload.
type teeWriter struct {
	*caddyhttp.ResponseWriterWrapper
	head     bool  // a HEAD request: never an event
	maxBody  int64 // cap on the copy
	decided  bool  // a final (non-1xx) status was written
	signals  [len(signalHeaders)]string
	signaled bool // the app set X-Webhook-Event (on any status)
	status   int
	buf      *bytes.Buffer // non-nil while copying an event's body
	overflow bool
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// isEvent reports whether the response announced an event we should queue.
func (t *teeWriter) isEvent() bool { return t.buf != nil }

func (t *teeWriter) WriteHeader(status int) {
	if t.decided {
		t.ResponseWriterWrapper.WriteHeader(status) // superfluous: net/http logs it
		return
	}
	h := t.Header()
	// Informational responses send the current headers too: take the
	// signals out now and keep them for the final status.
	for i, name := range signalHeaders {
		if v := h.Get(name); v != "" {
			t.signals[i] = v
			h.Del(name)
		}
	}
	if status >= 100 && status <= 199 {
		if status == http.StatusSwitchingProtocols {
			t.decided = true // the connection is handed over: never an event
		}
		t.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	t.decided, t.status = true, status
	t.signaled = t.signals[0] != ""
	if t.signaled && status >= 200 && status <= 299 && !t.head && status != http.StatusNoContent && status != http.StatusPartialContent {
		t.buf = bufPool.Get().(*bytes.Buffer)
		t.buf.Reset()
	}
	t.ResponseWriterWrapper.WriteHeader(status)
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if !t.decided {
		t.WriteHeader(http.StatusOK) // as net/http would, but through our decision
	}
	n, err := t.ResponseWriterWrapper.Write(p)
	if t.buf != nil && !t.overflow && n > 0 {
		if int64(t.buf.Len()+n) > t.maxBody {
			t.overflow = true
		} else {
			t.buf.Write(p[:n])
		}
	}
	return n, err
}

// ReadFrom must be overridden: the wrapper's would write around Write and
// skip the copy. Non-events keep the fast path (sendfile).
func (t *teeWriter) ReadFrom(r io.Reader) (int64, error) {
	if !t.decided {
		t.WriteHeader(http.StatusOK)
	}
	if t.buf == nil {
		return t.ResponseWriterWrapper.ReadFrom(r)
	}
	return io.Copy(writerOnly{t}, r)
}

// writerOnly hides ReadFrom so io.Copy goes through Write.
type writerOnly struct{ io.Writer }

// release returns the buffer to the pool.
func (t *teeWriter) release() {
	if t.buf != nil {
		if t.buf.Cap() <= 1<<20 {
			bufPool.Put(t.buf)
		}
		t.buf = nil
	}
}
