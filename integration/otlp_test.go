package integration

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpSpan is a span as an OTLP/HTTP collector received it.
type otlpSpan struct {
	Name, TraceID, SpanID, Parent string
	Kind                          tracev1.Span_SpanKind
	Attrs                         map[string]string // values as text
	Error                         bool
}

// collector is an OTLP/HTTP trace receiver (protobuf, /v1/traces) on
// loopback: what Caddy's tracing handler exports to when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names it. Caddy keeps one tracer
// provider, with the exporter it made first, for as long as any config
// uses tracing, so the test binary has one collector.
type collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []otlpSpan
}

var (
	otlpOnce sync.Once
	otlp     *collector
)

// otlpCollector starts the collector once and points Caddy's tracing at it
// (the environment is read when the tracer provider is made).
func otlpCollector(t *testing.T) *collector {
	otlpOnce.Do(func() {
		c := &collector{}
		c.srv = httptest.NewServer(http.HandlerFunc(c.export))
		otlp = c
	})
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp.srv.URL+"/v1/traces")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // milliseconds
	return otlp
}

func (c *collector) export(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, otlpSpan{
					Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Parent: hex.EncodeToString(s.GetParentSpanId()), Kind: s.GetKind(), Attrs: attrs(s.GetAttributes()),
					Error: s.GetStatus().GetCode() == tracev1.Status_STATUS_CODE_ERROR,
				})
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func attrs(kvs []*commonv1.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonv1.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
		default:
			m[kv.GetKey()] = v.GetStringValue()
		}
	}
	return m
}

// wait waits (bounded) until the spans received satisfy done, and returns
// them as they were then.
func (c *collector) wait(t *testing.T, what string, done func([]otlpSpan) bool) []otlpSpan {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.mu.Lock()
		spans := append([]otlpSpan(nil), c.spans...)
		c.mu.Unlock()
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s among the %d spans exported within 15s: %+v", what, len(spans), spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
