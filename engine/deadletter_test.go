package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Dead letters beyond max_dead_letter_bytes push out the oldest, and each
// one pushed out is counted in dead_letters_trimmed_total{bound="bytes"}.
// Not parallel: it counts a process-wide metric.
func TestDeadLettersOverTheByteBoundAreTrimmedAndCounted(t *testing.T) {
	rcv := newScripted(t, 400)
	cfg := testConfig()
	cfg.DeadLetters = redisstore.DeadLetterLimits{MaxBytes: 4000}
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv.URL))
	trimmed := func() int64 { return int64(testutil.ToFloat64(metrics.DeadLettersTrimmed.WithLabelValues("bytes"))) }
	before := trimmed()

	const events = 12
	pad := strings.Repeat("x", 600)
	for range events {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: "acme/api", Ref: "refs/heads/main"},
			[]byte(`{"object_kind":"push","ref":"refs/heads/main","pad":"`+pad+`"}`), "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		enqueue(t, rt, ev)
	}
	ctx := context.Background()
	var kept int64
	for deadline := time.Now().Add(15 * time.Second); ; {
		st, _ := rt.Stats(ctx)
		kept = st.DeadLetters
		if kept+trimmed()-before == events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters kept and %d trimmed, want %d in all", kept, trimmed()-before, events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if kept == 0 || kept == events {
		t.Fatalf("%d of %d dead letters kept: the bound should keep some and trim some", kept, events)
	}
	dl, err := rt.store.DeadLetters().List(ctx, "-", 100)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	for _, d := range dl {
		size += len(redisstore.EncodeDelivery(&d.Delivery)) + len(d.Reason)
	}
	if size > 4000 {
		t.Errorf("dead letters hold %d bytes, over the bound of 4000", size)
	}
}
