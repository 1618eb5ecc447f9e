package module

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

const pushBody = `{"object_kind":"push","ref":"refs/heads/main","commits":[]}`

// newCapture returns a capture handler whose runtime writes to a real Redis
// (its workers are not started, so events stay in the stream to be read).
func newCapture(t *testing.T, redisURL string) *Capture {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: redisURL, Namespace: "cap", Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt := engine.NewRuntime(store, "test", zaptest.NewLogger(t))
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	testStores.Store(rt, store)
	return &Capture{MaxBody: 1 << 20, EnqueueTimeout: caddy.Duration(2 * time.Second), rt: rt, logger: zaptest.NewLogger(t)}
}

// testStores are the stores under the tests' runtimes, to look inside.
var testStores sync.Map // *engine.Runtime → *redisstore.Store

// storeOf is the store under a runtime of newCapture.
func storeOf(rt *engine.Runtime) *redisstore.Store {
	s, _ := testStores.Load(rt)
	return s.(*redisstore.Store)
}

// queued returns the events in the stream.
func queued(t *testing.T, c *Capture) []webhook.Event {
	t.Helper()
	st := storeOf(c.rt)
	msgs, err := st.Client().XRange(context.Background(), st.Keys().Events(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []webhook.Event
	for _, m := range msgs {
		id := m.Values["id"].(string)
		body, err := st.Queue().Payloads(context.Background(), 0, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, webhook.Event{
			ID: id, Trigger: m.Values["trigger"].(string), Project: m.Values["project"].(string),
			Namespace: m.Values["ns"].(string), Ref: m.Values["ref"].(string), Chain: m.Values["chain"].(string),
			Body: body[0],
		})
	}
	return out
}

func signal(h http.Header, event, project string) {
	h.Set(HeaderEvent, event)
	h.Set(HeaderProject, project)
	h.Set(HeaderRef, "refs/heads/main")
}

func serve(t *testing.T, c *Capture, req *http.Request, upstream func(w http.ResponseWriter, r *http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	if req == nil {
		req = httptest.NewRequest(http.MethodPost, "/push", nil)
	}
	rec := httptest.NewRecorder()
	err := c.ServeHTTP(rec, req, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		upstream(w, r)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func assertNoSignals(t *testing.T, h http.Header) {
	t.Helper()
	for _, name := range signalHeaders {
		if v := h.Values(name); len(v) > 0 {
			t.Errorf("signal header %s reached the client: %v", name, v)
		}
	}
}

func TestCaptureDecisions(t *testing.T) {
	redis := redistest.Start(t)
	cases := []struct {
		name      string
		method    string
		reqHeader http.Header
		upstream  func(w http.ResponseWriter, r *http.Request)
		wantBody  string // what the client receives
		wantEvent bool
		wantCode  int
	}{
		{name: "event: 200 with signals", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, pushBody)
		}, wantBody: pushBody, wantEvent: true, wantCode: 200},
		{name: "event: implicit 200 from Write", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			io.WriteString(w, pushBody[:10])
			io.WriteString(w, pushBody[10:])
		}, wantBody: pushBody, wantEvent: true, wantCode: 200},
		{name: "event: body through ReadFrom", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusCreated)
			io.Copy(w, strings.NewReader(pushBody))
		}, wantBody: pushBody, wantEvent: true, wantCode: 201},
		{name: "not an event: no signals", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, pushBody)
		}, wantBody: pushBody, wantCode: 200},
		{name: "not an event: 4xx with signals", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":"no"}`)
		}, wantBody: `{"error":"no"}`, wantCode: 422},
		{name: "not an event: 204", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusNoContent)
		}, wantCode: 204},
		{name: "not an event: HEAD", method: http.MethodHead, upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusOK)
		}, wantCode: 200},
		{name: "not an event: upgrade request", reqHeader: http.Header{"Upgrade": {"websocket"}}, upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, pushBody)
		}, wantBody: pushBody, wantCode: 200},
		{name: "rejected: invalid payload, response untouched", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "<html>ok</html>")
		}, wantBody: "<html>ok</html>", wantCode: 200},
		{name: "rejected: payload not UTF-8, response untouched", upstream: func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "{\"ref\":\"refs/heads/main\",\"title\":\"caf\xe9\"}")
		}, wantBody: "{\"ref\":\"refs/heads/main\",\"title\":\"caf\xe9\"}", wantCode: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture(t, redis.URL)
			storeOf(c.rt).Client().FlushAll(context.Background())
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/x", nil)
			for k, v := range tc.reqHeader {
				req.Header[k] = v
			}
			rec := serve(t, c, req, tc.upstream)
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("client got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			assertNoSignals(t, rec.Header())
			evs := queued(t, c)
			if tc.wantEvent != (len(evs) == 1) || len(evs) > 1 {
				t.Fatalf("queued %d events, want event=%v", len(evs), tc.wantEvent)
			}
			if tc.wantEvent {
				ev := evs[0]
				if ev.Trigger != "push" || ev.Project != "acme/api" || ev.Namespace != "acme" || ev.Ref != "refs/heads/main" || string(ev.Body) != pushBody {
					t.Errorf("queued event = %+v", ev)
				}
			}
		})
	}
}

func TestCaptureRejectsOversizeEventButServesIt(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	c.MaxBody = 32
	before := rejected(t, webhook.RejectTooLarge)
	big := `{"object_kind":"push","ref":"refs/heads/main","pad":"` + strings.Repeat("x", 100) + `"}`
	rec := serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		io.WriteString(w, big)
	})
	if rec.Body.String() != big {
		t.Fatalf("client got a changed body: %q", rec.Body.String())
	}
	if n := len(queued(t, c)); n != 0 {
		t.Fatalf("queued %d events", n)
	}
	if d := rejected(t, webhook.RejectTooLarge) - before; d != 1 {
		t.Fatalf("too_large rejections grew by %v", d)
	}
}

func TestCaptureContentEncodings(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(pushBody))
	zw.Close()
	rec := serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	})
	if !bytes.Equal(rec.Body.Bytes(), gz.Bytes()) {
		t.Fatal("client body changed")
	}
	evs := queued(t, c)
	if len(evs) != 1 || string(evs[0].Body) != pushBody {
		t.Fatalf("gzip event = %+v", evs)
	}

	before := rejected(t, webhook.RejectEncoding)
	serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		w.Header().Set("Content-Encoding", "compress")
		w.Write([]byte{1, 2, 3})
	})
	if len(queued(t, c)) != 1 {
		t.Fatal("an LZW (compress) event was queued")
	}
	if d := rejected(t, webhook.RejectEncoding) - before; d != 1 {
		t.Fatalf("unsupported_encoding rejections grew by %v", d)
	}
}

func TestCaptureEnqueuesEvenWhenTheClientAborts(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	req := httptest.NewRequest(http.MethodPost, "/push", nil)
	req.Header.Set("X-Gitlab-Event-UUID", "0b9a1b8e-5b0c-4a57-9d3c-0c7b8f2e9a11")
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("panic = %v, want http.ErrAbortHandler re-raised", v)
		}
		evs := queued(t, c)
		if len(evs) != 1 || evs[0].Chain != "0b9a1b8e-5b0c-4a57-9d3c-0c7b8f2e9a11" {
			t.Fatalf("events = %+v: the committed event must be queued with the inherited chain", evs)
		}
	}()
	c.ServeHTTP(httptest.NewRecorder(), req, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		signal(w.Header(), "push", "acme/api")
		io.WriteString(w, pushBody)
		panic(http.ErrAbortHandler) // what reverse_proxy does when the client goes away
	}))
}

func TestCaptureRedisDownLeavesResponseAlone(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	c.EnqueueTimeout = caddy.Duration(300 * time.Millisecond)
	redis.StopAndHold()
	before := rejected(t, "enqueue_failed")
	rec := serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		io.WriteString(w, pushBody)
	})
	if rec.Code != 200 || rec.Body.String() != pushBody {
		t.Fatalf("client got %d %q", rec.Code, rec.Body.String())
	}
	assertNoSignals(t, rec.Header())
	if d := rejected(t, "enqueue_failed") - before; d != 1 {
		t.Fatalf("enqueue_failed grew by %v", d)
	}
}

// headerLog records the headers sent with each status, 1xx included.
type headerLog struct {
	http.ResponseWriter
	sent []http.Header
}

func (h *headerLog) WriteHeader(code int) {
	h.sent = append(h.sent, h.Header().Clone())
	if code >= 200 { // httptest.ResponseRecorder would take a 1xx as final
		h.ResponseWriter.WriteHeader(code)
	}
}

func TestTeeWriterStripsSignalsFromEarlyHintsAndKeepsThem(t *testing.T) {
	log := &headerLog{ResponseWriter: httptest.NewRecorder()}
	tw := &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: log}, maxBody: 1 << 10}
	tw.Header().Set(HeaderEvent, "push")
	tw.Header().Set("Link", "</style.css>; rel=preload")
	tw.WriteHeader(http.StatusEarlyHints)
	tw.Header().Set(HeaderProject, "acme/api")
	tw.WriteHeader(http.StatusOK)
	tw.Write([]byte(pushBody))
	for i, h := range log.sent {
		assertNoSignals(t, h)
		if i == 0 && h.Get("Link") == "" {
			t.Error("103 lost its Link header")
		}
	}
	if !tw.isEvent() || tw.signals[0] != "push" || tw.signals[1] != "acme/api" || tw.buf.String() != pushBody {
		t.Fatalf("event=%v signals=%v body=%q", tw.isEvent(), tw.signals, tw.buf)
	}
}

func TestTeeWriterLeavesNonEventsUncopied(t *testing.T) {
	tw := &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: httptest.NewRecorder()}, maxBody: 1 << 10}
	tw.WriteHeader(http.StatusOK)
	tw.Write([]byte("hello"))
	tw.ReadFrom(strings.NewReader("world"))
	if tw.buf != nil || tw.signaled {
		t.Fatal("a non-event response was copied")
	}
}

// rejected reads caddy_webhooks_events_rejected_total{reason} the way a
// scrape would.
func rejected(t *testing.T, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(engine.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "caddy_webhooks_events_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestTeeWriterHoldsTheLastByteUntilTheEventIsQueued(t *testing.T) {
	rec := httptest.NewRecorder()
	tw := &teeWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: rec}, maxBody: 1 << 10}
	signal(tw.Header(), "push", "acme/api")
	tw.Header().Set("Content-Length", strconv.Itoa(len(pushBody)))
	tw.WriteHeader(http.StatusOK)
	if n, err := tw.Write([]byte(pushBody)); n != len(pushBody) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := rec.Body.String(); got != pushBody[:len(pushBody)-1] {
		t.Fatalf("before queueing the client has %q: the response must not be complete yet", got)
	}
	if tw.buf.String() != pushBody {
		t.Fatalf("event copy = %q", tw.buf)
	}
	tw.completeResponse()
	if rec.Body.String() != pushBody {
		t.Fatalf("after queueing the client has %q", rec.Body.String())
	}
}

// Caddy puts the module's ID in front of a configuration error ("…
// webhooks_capture: invalid configuration: …"); the error itself says
// only what is wrong.
func TestCaptureSettingErrorsSayWhatIsWrong(t *testing.T) {
	for c, want := range map[*Capture]string{
		{MaxBody: -1}:        "max_body must not be negative",
		{EnqueueTimeout: -1}: "enqueue_timeout must not be negative",
	} {
		if err := c.Validate(); err == nil || err.Error() != want {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

// Match (the Caddyfile directive's matcher) says which requests' responses
// may be events; every response loses its signal headers all the same.
func TestCaptureMatchScopesEventsNotStripping(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	c.matchers = caddyhttp.MatcherSets{{caddyhttp.MatchMethod{"POST"}}}
	announce := func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		io.WriteString(w, pushBody)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodPost} {
		rec := serve(t, c, httptest.NewRequest(method, "/push", nil), announce)
		assertNoSignals(t, rec.Header())
		if rec.Body.String() != pushBody {
			t.Errorf("%s: the client got %q", method, rec.Body.String())
		}
	}
	if evs := queued(t, c); len(evs) != 1 {
		t.Fatalf("%d events queued, want the POST's alone", len(evs))
	}
}
