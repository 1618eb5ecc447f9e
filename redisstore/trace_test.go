package redisstore

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A delivery keeps its event's trace context through its stored form, with
// or without a tracestate, shared payload or own body, and in the rare
// tracestate that needs escapes (read by encoding/json); a delivery without
// one is stored exactly as before trace contexts existed.
func TestDeliveryTraceContextRoundTrip(t *testing.T) {
	at := time.UnixMilli(1795597974408)
	base := webhook.Delivery{EventID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", HookID: 7, Trigger: "push",
		Chain: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", At: at, Attempt: 2}
	for _, tc := range []struct {
		name   string
		trace  webhook.TraceContext
		shared bool
	}{
		{"parent, shared", webhook.TraceContext{Parent: testTraceParent}, true},
		{"parent and state, body", webhook.TraceContext{Parent: testTraceParent, State: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}, false},
		{"state with escapes", webhook.TraceContext{Parent: testTraceParent, State: `k=v"\x`}, true},
	} {
		d := base
		d.Trace, d.Shared = tc.trace, tc.shared
		if !tc.shared {
			d.Body = json.RawMessage(`{"object_kind":"push"}`)
		}
		enc := EncodeDelivery(&d)
		if !json.Valid([]byte(enc)) {
			t.Fatalf("%s: %s is not JSON", tc.name, enc)
		}
		got, err := DecodeDelivery(enc)
		if err != nil {
			t.Fatalf("%s: DecodeDelivery(%s): %v", tc.name, enc, err)
		}
		if got.Trace != tc.trace || got.Shared != tc.shared || got.Attempt != 2 || got.EventID != d.EventID ||
			string(got.Body) != string(d.Body) {
			t.Errorf("%s: round trip of %s gave %+v", tc.name, enc, got)
		}
	}

	// Without a trace context: not one byte more than before.
	plain := base
	plain.Shared = true
	want := `{"ev":"0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50","hook":7,"trigger":"push","chain":"0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50","att":2,"at":1795597974408,"p":1}`
	if got := EncodeDelivery(&plain); got != want {
		t.Errorf("delivery without a trace context stored as\n %s\nwant\n %s", got, want)
	}
	// A document queued by a version before trace contexts reads as none.
	got, err := DecodeDelivery(want)
	if err != nil || !got.Trace.IsZero() || !got.Shared {
		t.Errorf("earlier document decoded as %+v, %v", got, err)
	}
	// A version before them reads a document with one through
	// encoding/json (ownForm fails on the unknown member), which skips it.
	withTrace := base
	withTrace.Shared, withTrace.Trace = true, webhook.TraceContext{Parent: testTraceParent}
	var older struct {
		EventID string `json:"ev"`
		HookID  int64  `json:"hook"`
		Attempt int    `json:"att"`
		Shared  int    `json:"p"`
	}
	if err := json.Unmarshal([]byte(EncodeDelivery(&withTrace)), &older); err != nil || older.HookID != 7 || older.Shared != 1 {
		t.Errorf("an older reader gets %+v, %v", older, err)
	}
}

// An event queued with a trace context gives it back to the fan-out, and
// its deliveries carry it; an event without one adds no field to its entry.
func TestEventTraceContextThroughTheQueue(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if err := s.Queue().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	traced := webhook.TraceContext{Parent: testTraceParent, State: "vendor=x"}
	for _, trace := range []webhook.TraceContext{traced, {}} {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
			[]byte(`{"ref":"refs/heads/main"}`), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ev.Trace = trace
		id, err := s.Queue().AddEvent(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		entry, err := s.c.rdb.XRange(ctx, s.c.keys.Events(0), id, id).Result()
		if err != nil || len(entry) != 1 {
			t.Fatalf("reading the entry back: %v", err)
		}
		_, hasTP := entry[0].Values["tp"]
		_, hasTS := entry[0].Values["ts"]
		if hasTP != !trace.IsZero() || hasTS != (trace.State != "") {
			t.Errorf("entry of an event with trace %+v has fields %v", trace, entry[0].Values)
		}
		msgs, err := s.Queue().ReadEvents(ctx, 0, "c", ">", 1, 0)
		if err != nil || len(msgs) != 1 || msgs[0].Err != nil {
			t.Fatalf("read %+v: %v", msgs, err)
		}
		if got := msgs[0].Event.Trace; got != trace {
			t.Errorf("event read back with trace %+v, want %+v", got, trace)
		}
		f := []Fanned{{Shard: 0, StreamID: msgs[0].StreamID, EventID: ev.ID, Chain: ev.Chain, Checked: 1,
			Deliveries: []webhook.Delivery{{EventID: ev.ID, HookID: 5, Trigger: "push", Chain: ev.Chain, At: ev.At,
				Attempt: 1, Shared: true, Trace: msgs[0].Event.Trace}}}}
		if err := s.Queue().FanOut(ctx, f, ChainRule{Window: time.Minute, MaxHooks: 100}, HandOff{}); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Queue().ReadDeliveries(ctx, 0, "d", ">", 10, 0)
		if err != nil || len(ds) != 1 || ds[0].Err != nil {
			t.Fatalf("read deliveries %+v: %v", ds, err)
		}
		if got := ds[0].Delivery.Trace; got != trace {
			t.Errorf("delivery read back with trace %+v, want %+v", got, trace)
		}
		if doc := s.c.rdb.XRange(ctx, s.c.keys.Ready(0), ds[0].StreamID, ds[0].StreamID).Val()[0].Values["d"].(string); trace.IsZero() == strings.Contains(doc, `"tp"`) {
			t.Errorf("stored delivery %s", doc)
		}
		if err := s.Queue().SettleDeliveries(ctx, &ds[0]); err != nil {
			t.Fatal(err)
		}
	}
}
