package integration

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestCapturesSpoolAtOnceWhileRedisIsDown: with Redis killed, a run of
// captures does not wait for it each: the first finds it unreachable, and
// the rest go to the spool without trying it. The clients' responses are
// whole, every event is delivered once Redis is back, and the metrics
// tell the operator meanwhile.
func TestCapturesSpoolAtOnceWhileRedisIsDown(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	spoolDir := t.TempDir()
	_, redis := start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://forge.example.com", app,
			"\t\tspool_dir "+spoolDir+"\n"+hookBlock("ci", rcv.URL+"/hook", "group acme", "push"))
	})
	num := func(name string) float64 {
		v, _ := strconv.ParseFloat(metric(t, name), 64)
		return v
	}
	labels := fmt.Sprintf(`{namespace="webhooks",redis=%q}`, redis.URL)
	spooledMetric := `caddy_webhooks_events_spooled_total{namespace="webhooks"}`
	skippedMetric := "caddy_webhooks_enqueues_skipped_total" + labels
	downMetric := "caddy_webhooks_redis_down" + labels

	post(t, "/push?project=acme/api&branch=warmup", nil)
	warmup := rcv.next(t)
	if v := metric(t, downMetric); v != "0" {
		t.Fatalf("%s = %q with redis up, want 0", downMetric, v)
	}

	redis.Stop()
	spooledBefore, skippedBefore := num(spooledMetric), num(skippedMetric)
	const n = 10
	start := time.Now()
	for i := range n {
		resp, body := post(t, fmt.Sprintf("/push?project=acme/api&branch=b%d", i), nil)
		if resp.StatusCode != 200 || body != pushPayload("acme/api", fmt.Sprintf("refs/heads/b%d", i)) {
			t.Fatalf("capture %d: client got %d %q", i, resp.StatusCode, body)
		}
	}
	// For the record: each capture that tries Redis waits up to
	// enqueue_timeout (2s); without this, all n did.
	t.Logf("%d captures with redis killed took %s", n, time.Since(start))
	if spooled := num(spooledMetric) - spooledBefore; spooled != n {
		t.Fatalf("%v events spooled, want %d", spooled, n)
	}
	// Only the first capture tried Redis; the others were spooled at once.
	if skipped := num(skippedMetric) - skippedBefore; skipped != n-1 {
		t.Errorf("%v captures spooled without trying redis, want %d", skipped, n-1)
	}
	if v := metric(t, downMetric); v != "1" {
		t.Errorf("%s = %q while redis is down, want 1", downMetric, v)
	}

	redis.Restart()
	// Delivery is at least once: the warm-up delivery, whose settlement the
	// kill may have cut off, can come again, and so can any other with the
	// Idempotency-Key it had the first time.
	keys := map[string]string{warmup.Body: warmup.Header.Get("Idempotency-Key")}
	repeat := func(d delivery) bool {
		key, seen := keys[d.Body]
		if seen && key != d.Header.Get("Idempotency-Key") {
			t.Fatalf("%s came again with Idempotency-Key %s, first %s", d.Body, d.Header.Get("Idempotency-Key"), key)
		}
		keys[d.Body] = d.Header.Get("Idempotency-Key")
		return seen
	}
	for fresh, reads := 0, 0; fresh < n; reads++ {
		if reads == 2*n {
			t.Fatalf("%d distinct deliveries after %d, want %d", fresh, reads, n)
		}
		if !repeat(rcv.next(t)) {
			fresh++
		}
	}
	for i := range n {
		if want := pushPayload("acme/api", fmt.Sprintf("refs/heads/b%d", i)); keys[want] == "" {
			t.Errorf("event of capture %d was not delivered", i)
		}
	}
	for quiet := time.After(time.Second); ; {
		select {
		case d := <-rcv.ch:
			if !repeat(d) {
				t.Fatalf("unexpected delivery %s: %s", d.Header.Get("X-Gitlab-Event"), d.Body)
			}
			continue
		case <-quiet:
		}
		break
	}
	if v := metric(t, downMetric); v != "0" {
		t.Errorf("%s = %q once redis is back, want 0", downMetric, v)
	}
}
