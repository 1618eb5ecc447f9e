package module

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The response headers an app sets to announce an event. Every header and
// trailer named X-Webhook-* is removed from every response before it
// reaches the client, empty or not: the prefix belongs to the app's talk
// with Caddy.
const (
	HeaderEvent     = "X-Webhook-Event"
	HeaderProject   = "X-Webhook-Project"
	HeaderNamespace = "X-Webhook-Namespace"
	HeaderRef       = "X-Webhook-Ref"
)

var signalHeaders = [...]string{HeaderEvent, HeaderProject, HeaderNamespace, HeaderRef}

const signalPrefix = "x-webhook-"

func isSignal(name string) bool {
	return len(name) >= len(signalPrefix) && strings.EqualFold(name[:len(signalPrefix)], signalPrefix)
}

// stripSignals removes X-Webhook-* headers, trailers set through
// http.TrailerPrefix, and their declarations in Trailer (whose values an
// app sets after the body).
func stripSignals(h http.Header) {
	for k := range h {
		if isSignal(k) || isSignal(strings.TrimPrefix(k, http.TrailerPrefix)) {
			delete(h, k)
		}
	}
	declared, ok := h["Trailer"]
	if !ok {
		return
	}
	var keep []string
	for _, v := range declared {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !isSignal(name) {
				keep = append(keep, name)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Trailer")
	} else {
		h["Trailer"] = []string{strings.Join(keep, ", ")}
	}
}

// teeWriter decides at WriteHeader time, from status and headers alone,
// whether a response announces an event. A response that does not passes
// through untouched; one that does streams to the client unchanged while a
// capped copy of its body is kept for the payload.
type teeWriter struct {
	*caddyhttp.ResponseWriterWrapper
	head     bool   // a HEAD request: never an event
	ignore   bool   // a request Match leaves out: signals are stripped, never taken
	ignored  string // the X-Webhook-Event such a response set
	maxBody  int64  // cap on the copy
	decided  bool   // a final (non-1xx) status was written
	signals  [len(signalHeaders)]string
	signaled bool           // the app set X-Webhook-Event (on any status)
	rules    []*CaptureRule // capture rules whose request matchers matched
	rule     *CaptureRule   // the rule that made an unsignalled response an event
	status   int
	buf      *bytes.Buffer // non-nil while copying an event's body
	overflow bool
	// An event response with a Content-Length keeps its last byte back
	// until the event is in Redis, so the client cannot see the response
	// complete before the event is durable. (Without a length, net/http
	// ends the response only after the handler returns, which is later.)
	declared int64 // Content-Length of an event response, or -1
	written  int64
	held     []byte
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
		}
	}
	stripSignals(h)
	if status >= 100 && status <= 199 {
		if status == http.StatusSwitchingProtocols {
			t.decided = true // the connection is handed over: never an event
		}
		t.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	t.decided, t.status = true, status
	if t.ignore {
		t.ignored, t.signals = t.signals[0], [len(signalHeaders)]string{}
	}
	t.signaled = t.signals[0] != ""
	if !t.signaled && len(t.rules) > 0 {
		t.rule = pickRule(t.rules, status, h)
	}
	if (t.signaled || t.rule != nil) && status >= 200 && status <= 299 && !t.head && status != http.StatusNoContent && status != http.StatusPartialContent {
		t.buf = bufPool.Get().(*bytes.Buffer)
		t.buf.Reset()
		t.declared = -1
		if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n > 0 {
			t.declared = n
		}
	}
	t.ResponseWriterWrapper.WriteHeader(status)
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if !t.decided {
		t.WriteHeader(http.StatusOK) // as net/http would, but through our decision
	}
	n, err := t.forward(p)
	if t.buf != nil && !t.overflow && n > 0 {
		if int64(t.buf.Len()+n) > t.maxBody {
			t.overflow = true
		} else {
			t.buf.Write(p[:n])
		}
	}
	return n, err
}

// forward writes p on, holding back an event response's final byte.
func (t *teeWriter) forward(p []byte) (int, error) {
	if t.buf == nil || t.declared < 0 || len(p) == 0 || t.written+int64(len(p)) != t.declared {
		n, err := t.ResponseWriterWrapper.Write(p)
		t.written += int64(n)
		return n, err
	}
	n, err := t.ResponseWriterWrapper.Write(p[:len(p)-1])
	t.written += int64(n)
	if err != nil {
		return n, err
	}
	t.held = append(t.held[:0], p[len(p)-1])
	t.written++
	return len(p), nil
}

// completeResponse writes the held-back byte, ending the response.
func (t *teeWriter) completeResponse() {
	if len(t.held) > 0 {
		_, _ = t.ResponseWriterWrapper.Write(t.held)
		t.held = t.held[:0]
	}
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
