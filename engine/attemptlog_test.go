package engine

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Each attempt is one log line a log pipeline can index: a failure at info
// level, a success at debug level, with the hook, the event's ID and UUID,
// the webhook UUID the receiver got, status, duration, attempt and trace
// ID; no token, signing token, custom header value, URL variable, URL
// credential or query value appears in any line, at any level.
func TestEachAttemptIsOneStructuredLogLineWithoutSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"tok-S3CRET", "hdr-S3CRET", "var-S3CRET", "user-S3CRET", "pass-S3CRET", "query-S3CRET"}
	signing, _ := gitlab.GenerateSigningToken()
	secrets = append(secrets, signing, strings.TrimPrefix(signing, gitlab.SigningTokenPrefix))

	flaky := newScripted(t, http.StatusInternalServerError, http.StatusOK)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	h := hookTo(t, 1, "acme/api", strings.Replace(flaky.URL, "http://", "http://user-S3CRET:pass-S3CRET@", 1)+"/{path}?key=query-S3CRET")
	h.Name, h.Token = "flaky", "tok-S3CRET"
	h.URLVariables = map[string]string{"path": "var-S3CRET"}
	h.CustomHeaders = map[string]string{"X-Auth": "hdr-S3CRET"}
	h.Signing = gitlab.SigningTokens{Current: signing}
	down := hookTo(t, 2, "acme/api", "http://{host}/x")
	down.Name, down.Token, down.URLVariables = "down", "tok-S3CRET", map[string]string{"host": closedAddr}
	secrets = append(secrets, closedAddr) // a host from URL variables is secret too

	core, logs := observer.New(zapcore.DebugLevel)
	store, err := redisstore.New(redisstore.Options{URL: redistest.Start(t).URL, Namespace: "test", Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := webhook.NewHookSet([]*webhook.Hook{h, down})
	rt := NewRuntime(store, "c1", zap.New(core))
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 2
	rt.Configure(cfg, set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })

	// The event is captured under a request's span.
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	reqCtx, reqSpan := tp.Tracer("caddy").Start(context.Background(), "handler")
	ev := pushEvent(t, "acme/api")
	if err := rt.Enqueue(reqCtx, ev); err != nil {
		t.Fatal(err)
	}
	reqSpan.End()
	traceID := reqSpan.SpanContext().TraceID().String()
	flaky.wait(t, 2)
	res := rt.TestHook(context.Background(), h, gitlab.Push, []byte(`{"object_kind":"push"}`))
	if !res.Success() {
		t.Fatalf("test request: %+v", res)
	}

	// 500 then 200 to flaky, two refused connections to down, one test.
	var lines []observer.LoggedEntry
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines = logs.FilterMessageSnippet("webhook deliver").AllUntimed()
		if len(lines) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	type key struct {
		hook    string
		attempt int64
		kind    string
	}
	byAttempt := map[key]map[string]any{}
	levels := map[key]zapcore.Level{}
	for _, l := range lines {
		f := l.ContextMap()
		k := key{f["hook"].(string), f["attempt"].(int64), f["kind"].(string)}
		byAttempt[k], levels[k] = f, l.Level
	}
	want := []struct {
		key
		status int64
		level  zapcore.Level
		traced bool
	}{
		{key{"flaky", 1, "delivery"}, 500, zapcore.InfoLevel, true},
		{key{"flaky", 2, "delivery"}, 200, zapcore.DebugLevel, true},
		{key{"down", 1, "delivery"}, 0, zapcore.InfoLevel, true},
		{key{"down", 2, "delivery"}, 0, zapcore.InfoLevel, true},
		{key{"flaky", 1, "test"}, 200, zapcore.DebugLevel, false},
	}
	if len(lines) != len(want) {
		t.Errorf("%d attempt lines, want %d: %v", len(lines), len(want), byAttempt)
	}
	sent := map[string]bool{}
	for _, r := range flaky.got {
		sent[r.header.Get(gitlab.HeaderWebhookUUID)] = true
	}
	for _, w := range want {
		f, ok := byAttempt[w.key]
		if !ok {
			t.Errorf("no line for %+v", w.key)
			continue
		}
		if levels[w.key] != w.level || f["status"] != w.status || f["duration"] == nil {
			t.Errorf("%+v: level %s, fields %v; want %s, status %d", w.key, levels[w.key], f, w.level, w.status)
		}
		if w.kind == "delivery" && (f["event"] != ev.ID || f["event_uuid"] != ev.Chain) {
			t.Errorf("%+v: event %v, event_uuid %v; want %s", w.key, f["event"], f["event_uuid"], ev.ID)
		}
		if (f["trace_id"] == traceID) != w.traced {
			t.Errorf("%+v: trace_id %v, want %v: %v", w.key, f["trace_id"], traceID, w.traced)
		}
		if w.hook == "flaky" && !sent[f["webhook_uuid"].(string)] {
			t.Errorf("%+v: webhook_uuid %v is none the receiver got", w.key, f["webhook_uuid"])
		}
		if w.hook == "down" && (f["error"] == nil || f["detail"] == nil) {
			t.Errorf("%+v: a refused connection's line has no error or debug detail: %v", w.key, f)
		}
	}

	// Nothing the runtime logged, at any level, holds a secret.
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, l := range logs.AllUntimed() {
		buf, err := enc.EncodeEntry(l.Entry, l.Context)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(buf.String(), s) {
				t.Errorf("log line shows secret %q: %s", s, buf.String())
			}
		}
		buf.Free()
	}
}
