package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// traceReceiver records the headers of each request; a flaky one answers
// every other request (the first, third…) with a 500.
type traceReceiver struct {
	*httptest.Server
	seen  chan http.Header
	flaky bool
	n     atomic.Int32
}

func newTraceReceiver(t *testing.T, flaky bool) *traceReceiver {
	r := &traceReceiver{seen: make(chan http.Header, 16), flaky: flaky}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.seen <- req.Header.Clone()
		if r.flaky && r.n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *traceReceiver) next(t *testing.T) http.Header {
	t.Helper()
	select {
	case h := <-r.seen:
		return h
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15s")
		return nil
	}
}

// The client's trace, as its own traceparent names it.
const (
	clientTraceID = "0af7651916cd43dd8448eb211c80319c"
	clientSpanID  = "b7ad6b7169203331"
)

// With Caddy's tracing handler before webhooks_capture, an event's life is
// in the trace of the request that caused it, as a real OTLP collector
// receives it: Caddy's request span, the enqueue under it, the fan-out and
// every delivery attempt under the enqueue; each receiver sees its
// attempt's span as traceparent, except the hook that turned that off. A
// route without tracing records nothing and sends no trace context.
func TestTracingFromTheRequestToTheReceiver(t *testing.T) {
	col := otlpCollector(t)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	traced, silent, flaky := newTraceReceiver(t, false), newTraceReceiver(t, false), newTraceReceiver(t, true)
	app := newApp(t)
	redis := redistest.Start(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`{
	webhooks {
		redis %s
		namespace tracing
		allow_local_requests
		encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
		timeout 2s
		lease 4s
		max_attempts 3
		retry_backoff 1s
		hook traced {
			url %s/hook?key=url-s3cret
			token it-s3cret-traced
			project acme/api
		}
		hook silent {
			url %s/hook
			project acme/api
			trace_context off
		}
		hook flaky {
			url %s/hook
			project acme/api
		}
	}
}

localhost:9080 {
	handle_path /api/v4/* {
		webhooks_api {
			token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
		}
	}
	handle_path /untraced/* {
		webhooks_capture
		reverse_proxy %s
	}
	handle {
		tracing {
			span app_request
		}
		webhooks_capture
		reverse_proxy %s
	}
}
`, redis.URL, traced.URL, silent.URL, flaky.URL, app.addr(), app.addr()), "caddyfile")

	// Outside a trace first: no header, and (checked at the end) no span.
	post(t, "/untraced/push?project=acme/api&branch=main", http.Header{"Traceparent": {"00-" + strings.Repeat("1", 32) + "-" + strings.Repeat("2", 16) + "-01"}})
	for _, r := range []*traceReceiver{traced, silent, flaky} {
		if h := r.next(t); h.Get("Traceparent") != "" || h.Get("Tracestate") != "" {
			t.Errorf("a delivery of an event captured outside a trace carried traceparent %q", h.Get("Traceparent"))
		}
	}
	flaky.next(t) // its retry

	resp, _ := post(t, "/push?project=acme/api&branch=main", http.Header{
		"Traceparent": {"00-" + clientTraceID + "-" + clientSpanID + "-01"}, "Tracestate": {"client=1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	got := map[string][]http.Header{}
	for name, r := range map[string]*traceReceiver{"traced": traced, "silent": silent} {
		got[name] = append(got[name], r.next(t))
	}
	got["flaky"] = []http.Header{flaky.next(t), flaky.next(t)} // 500, then the retry

	spans := col.wait(t, "four delivery spans of the client's trace", func(s []otlpSpan) bool {
		n := 0
		for _, sp := range s {
			if sp.Name == "webhooks.deliver" && sp.TraceID == clientTraceID {
				n++
			}
		}
		return n == 4
	})
	var server, enqueue, fanout otlpSpan
	var deliver []otlpSpan
	for _, sp := range spans {
		if sp.TraceID != clientTraceID {
			if strings.HasPrefix(sp.Name, "webhooks.") {
				t.Errorf("span %s outside the client's trace (%s): only the traced route records spans", sp.Name, sp.TraceID)
			}
			continue
		}
		switch sp.Name {
		case "app_request":
			server = sp
		case "webhooks.enqueue":
			enqueue = sp
		case "webhooks.fan_out":
			fanout = sp
		case "webhooks.deliver":
			deliver = append(deliver, sp)
		}
	}
	if server.Parent != clientSpanID {
		t.Fatalf("Caddy's request span %+v, want it under the client's span %s", server, clientSpanID)
	}
	if enqueue.Parent != server.SpanID || enqueue.Attrs["webhooks.event.trigger"] != "push" || enqueue.Attrs["webhooks.project"] != "acme/api" {
		t.Errorf("enqueue span %+v, want it under the request span %s", enqueue, server.SpanID)
	}
	if fanout.Parent != enqueue.SpanID || fanout.Attrs["webhooks.hooks"] != "3" || fanout.Attrs["webhooks.deliveries"] != "3" ||
		fanout.Attrs["webhooks.event.id"] != enqueue.Attrs["webhooks.event.id"] {
		t.Errorf("fan-out span %+v, want it under the enqueue span %s with 3 hooks", fanout, enqueue.SpanID)
	}
	byTraceparent := map[string]otlpSpan{}
	for _, d := range deliver {
		if d.Parent != enqueue.SpanID || d.Kind.String() != "SPAN_KIND_CLIENT" || d.Attrs["webhooks.event.id"] != enqueue.Attrs["webhooks.event.id"] {
			t.Errorf("delivery span %+v, want a client span under the enqueue span %s", d, enqueue.SpanID)
		}
		for k, v := range d.Attrs {
			if strings.Contains(v, "s3cret") {
				t.Errorf("delivery span attribute %s=%q shows a secret", k, v)
			}
		}
		byTraceparent["00-"+clientTraceID+"-"+d.SpanID+"-01"] = d
	}
	// Each receiver saw its attempt's span, and the request's tracestate.
	for name, hs := range got {
		for i, h := range hs {
			tp := h.Get("Traceparent")
			if name == "silent" {
				if tp != "" || h.Get("Tracestate") != "" {
					t.Errorf("hook with trace_context off sent traceparent %q", tp)
				}
				continue
			}
			d, ok := byTraceparent[tp]
			if !ok || h.Get("Tracestate") != "client=1" {
				t.Errorf("%s attempt %d: traceparent %q tracestate %q is no delivery span's", name, i+1, tp, h.Get("Tracestate"))
				continue
			}
			wantStatus, wantAttempt := "200", "1"
			if name == "flaky" {
				wantStatus, wantAttempt = []string{"500", "200"}[i], []string{"1", "2"}[i]
			}
			if d.Attrs["http.response.status_code"] != wantStatus || d.Attrs["webhooks.delivery.attempt"] != wantAttempt ||
				d.Error != (wantStatus != "200") {
				t.Errorf("%s attempt %d: span %+v, want status %s, attempt %s", name, i+1, d, wantStatus, wantAttempt)
			}
			if name == "traced" && d.Attrs["url.full"] != traced.URL+"/hook?key=*****" {
				t.Errorf("url.full %q, want the masked URL", d.Attrs["url.full"])
			}
		}
	}

	// The API shows and sets the hook option.
	f := &apiFixture{tester: tester}
	st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json",
		[]byte(`{"url":"`+traced.URL+`/api","trace_context":false}`))
	var h struct {
		ID           int64 `json:"id"`
		TraceContext *bool `json:"trace_context"`
	}
	if err := json.Unmarshal([]byte(out), &h); st != http.StatusCreated || err != nil || h.TraceContext == nil || *h.TraceContext {
		t.Fatalf("creating a hook with trace_context false: %d %s", st, out)
	}
	st, out, _ = f.raw(t, "GET", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "", nil)
	var list []map[string]any
	_ = json.Unmarshal([]byte(out), &list)
	want := map[string]bool{"traced": true, "flaky": true, "silent": false, "": false}
	for _, e := range list {
		name, _ := e["name"].(string)
		if e["trace_context"] != want[name] {
			t.Errorf("hook %q lists trace_context %v, want %v", name, e["trace_context"], want[name])
		}
	}
	if st != http.StatusOK || len(list) != 4 {
		t.Errorf("list: %d, %d hooks", st, len(list))
	}
}
