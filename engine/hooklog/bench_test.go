package hooklog

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// BenchmarkNewLogEntry builds the log entry of a successful attempt, as
// every delivery does, and encodes it as AppendLog does.
func BenchmarkNewLogEntry(b *testing.B) {
	h := &webhook.Hook{ID: 1, URL: "http://127.0.0.1/h/{path}", Token: "secret-token",
		URLVariables: map[string]string{"path": "abc"}, CustomHeaders: map[string]string{"X-Team": "platform"}}
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"` + string(make([]byte, 0)) + `"}`)
	for len(body) < 1024 {
		body = append(body[:len(body)-2], `x"}`...)
	}
	req := http.Header{}
	(&gitlab.DeliveryHeaders{Trigger: gitlab.Push, UserAgent: "GitLab/18.6.0", Token: h.Token,
		WebhookUUID: "u", EventUUID: "e", IdempotencyKey: "k", Custom: h.CustomHeaders}).Apply(req)
	a := &Attempt{Hook: h, EventID: "ev", Chain: "chain", Trigger: gitlab.Push, Payload: body,
		Status: 200, Header: http.Header{"Content-Length": {"0"}, "Date": {"x"}}, Duration: time.Millisecond, RequestHeader: req}
	b.ReportAllocs()
	for b.Loop() {
		e := NewEntry(KindDelivery, a, DefaultMaxRequestBody)
		if _, err := jsonMarshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// jsonMarshal stands for redisstore.AppendLog's encoding of the entry.
func jsonMarshal(e *webhook.LogEntry) ([]byte, error) { return json.Marshal(e) }

// BenchmarkNewLogEntryPush is BenchmarkNewLogEntry with GitLab's sample
// push payload, which holds e-mail addresses the log redacts.
func BenchmarkNewLogEntryPush(b *testing.B) {
	body, err := os.ReadFile("../../api/samples/push.json")
	if err != nil {
		b.Fatal(err)
	}
	h := &webhook.Hook{ID: 1, URL: "http://127.0.0.1/h", Token: "secret-token"}
	a := &Attempt{Hook: h, EventID: "ev", Chain: "chain", Trigger: gitlab.Push, Payload: body,
		Status: 200, Header: http.Header{"Content-Length": {"0"}}, Duration: time.Millisecond, RequestHeader: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		e := NewEntry(KindDelivery, a, DefaultMaxRequestBody)
		if _, err := jsonMarshal(e); err != nil {
			b.Fatal(err)
		}
	}
}
