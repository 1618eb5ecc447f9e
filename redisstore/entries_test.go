package redisstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestDeliveryRoundTrip(t *testing.T) {
	at := time.UnixMilli(1795597974408)
	for _, d := range []webhook.Delivery{
		{EventID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", HookID: 7, Trigger: "push", Chain: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50",
			At: at, Body: json.RawMessage(`{"object_kind":"push","ref":"refs/heads/main"}`), Attempt: 1},
		// A chain from a request header may hold anything, even our own key.
		{EventID: "e", HookID: -3, Trigger: "merge_request", Chain: `x,"body":{"att":9}` + "\"\\\n\u00e9\x01",
			At: at, Body: json.RawMessage(`[1,"a,\"body\":2"]`), Attempt: 8},
		{EventID: "e", HookID: 1, Trigger: "push", At: at}, // no body: stored as null
		// A replayed attempt of a custom webhook template: sent as it is.
		{EventID: "e", HookID: 2, Trigger: "push", Chain: "c", At: at, Body: json.RawMessage(`{"kind":"push"}`), Attempt: 1, Rendered: true},
		{EventID: "é", HookID: 2, Trigger: "push", Chain: "c", At: at, Body: json.RawMessage(`{"r":1}`), Attempt: 1, Rendered: true},
	} {
		enc := EncodeDelivery(&d)
		if !json.Valid([]byte(enc)) {
			t.Fatalf("Encode = %s: not JSON", enc)
		}
		got, err := DecodeDelivery(enc)
		if err != nil {
			t.Fatalf("DecodeDelivery(%s): %v", enc, err)
		}
		want := d
		if len(want.Body) == 0 {
			want.Body = json.RawMessage("null")
		}
		if got.EventID != want.EventID || got.HookID != want.HookID || got.Trigger != want.Trigger ||
			got.Chain != want.Chain || got.Attempt != want.Attempt || !got.At.Equal(want.At) || !bytes.Equal(got.Body, want.Body) ||
			got.Rendered != want.Rendered {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", enc, got, want)
		}
	}
}

// TestDecodeEarlierLayout reads deliveries queued by the version that
// stored the body before "att" (encoding/json's field order).
func TestDecodeEarlierLayout(t *testing.T) {
	old := `{"ev":"e1","hook":5,"trigger":"push","chain":"c1","body":{"ref":"refs/heads/main","att":3},"att":2,"at":1795597974408}`
	d, err := DecodeDelivery(old)
	if err != nil {
		t.Fatal(err)
	}
	if d.EventID != "e1" || d.HookID != 5 || d.Attempt != 2 || string(d.Body) != `{"ref":"refs/heads/main","att":3}` ||
		d.At.UnixMilli() != 1795597974408 {
		t.Errorf("decoded %+v", d)
	}
}

func TestDecodeDeliveryRejects(t *testing.T) {
	for _, s := range []string{``, `{`, `{"ev":"","hook":1,"att":1,"at":1,"body":null}`, `{"ev":"e","att":1,"at":1,"body":null}`,
		`{"ev":"e","hook":"x","att":1,"at":1,"body":null}`} {
		if _, err := DecodeDelivery(s); err == nil {
			t.Errorf("DecodeDelivery(%q) accepted it", s)
		}
	}
}

func FuzzDeliveryRoundTrip(f *testing.F) {
	f.Add("e", int64(1), "push", "c", `{"a":1}`, 1)
	f.Add(`,"body":`, int64(-1), `"`, `,"att":`, `"x"`, 3)
	f.Fuzz(func(t *testing.T, ev string, hook int64, trig, chain, body string, att int) {
		if ev == "" || hook == 0 || !json.Valid([]byte(body)) {
			return
		}
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(body)) != nil {
			return
		}
		d := webhook.Delivery{EventID: ev, HookID: hook, Trigger: trig, Chain: chain, Body: compact.Bytes(), Attempt: att, At: time.UnixMilli(12345)}
		enc := EncodeDelivery(&d)
		if !json.Valid([]byte(enc)) {
			t.Fatalf("Encode = %q: not JSON", enc)
		}
		got, err := DecodeDelivery(enc)
		if err != nil {
			t.Fatal(err)
		}
		// Strings that are not valid UTF-8 come back with U+FFFD, as with encoding/json.
		var wantEv, wantTrig, wantChain string
		for _, p := range []struct {
			in  string
			out *string
		}{{ev, &wantEv}, {trig, &wantTrig}, {chain, &wantChain}} {
			b, _ := json.Marshal(p.in)
			_ = json.Unmarshal(b, p.out)
		}
		if got.EventID != wantEv || got.HookID != hook || got.Trigger != wantTrig || got.Chain != wantChain ||
			got.Attempt != att || !bytes.Equal(got.Body, compact.Bytes()) {
			t.Errorf("round trip of %q: got %+v", enc, got)
		}
	})
}

// TestSharedDeliveryRoundTrip: a delivery of the event's shared payload
// is stored without a body and read back as such, escapes or not.
func TestSharedDeliveryRoundTrip(t *testing.T) {
	at := time.UnixMilli(1795597974408)
	for _, d := range []webhook.Delivery{
		{EventID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", HookID: 7, Trigger: "push", Chain: "c", At: at, Attempt: 3, Shared: true},
		{EventID: `e"\é`, HookID: -1, Trigger: "push", Chain: `,"p":1}`, At: at, Attempt: 1, Shared: true},
	} {
		enc := EncodeDelivery(&d)
		got, err := DecodeDelivery(enc)
		if err != nil {
			t.Fatalf("DecodeDelivery(%s): %v", enc, err)
		}
		if got.EventID != d.EventID || got.HookID != d.HookID || got.Chain != d.Chain || got.Attempt != d.Attempt ||
			!got.At.Equal(d.At) || !got.Shared || got.Body != nil {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", enc, got, d)
		}
	}
}
