package redisstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// BenchmarkDeliveryEncoding is the stored form of every delivery: encoded
// once per hook at fan-out (and again at settle), decoded at each read.
func BenchmarkDeliveryEncoding(b *testing.B) {
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"` + string(bytes.Repeat([]byte("x"), 960)) + `"}`)
	d := webhook.Delivery{EventID: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", HookID: 42, Trigger: "push",
		Chain: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", At: time.Now(), Body: body, Attempt: 1}
	enc := EncodeDelivery(&d)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			_ = EncodeDelivery(&d)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeDelivery(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A delivery of the event's shared payload, as the fan-out queues them.
	shared := d
	shared.Shared = true
	encShared := EncodeDelivery(&shared)
	b.Run("decode shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeDelivery(encShared); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncodeLogEntry is the log entry every attempt writes with its
// settle: GitLab's request headers, a short response, and the payload
// referred to (the delivery's shared one), not copied.
func BenchmarkEncodeLogEntry(b *testing.B) {
	e := &webhook.LogEntry{HookID: 42, EventID: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", Chain: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6",
		Trigger: "push", Kind: "delivery", URL: "http://127.0.0.1:8080/h/1",
		RequestHeaders: map[string]string{"Content-Type": "application/json", "User-Agent": "GitLab/18.6.0",
			"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "[REDACTED]", "X-Gitlab-Instance": "https://gitlab.example.com",
			"X-Gitlab-Webhook-Uuid": "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f7", "X-Gitlab-Event-Uuid": "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6",
			"Idempotency-Key": "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f8"},
		ResponseHeaders: map[string]string{"Date": "Sun, 29 Nov 2026 07:01:02 GMT", "Content-Length": "0"},
		ResponseStatus:  "204", Duration: 0.000734, CreatedAt: time.Now().UTC()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeLogEntry(e); err != nil {
			b.Fatal(err)
		}
	}
}
