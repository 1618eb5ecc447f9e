package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/grt-continuation/caddy-webhooks/engine/alerts"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// opsEndpoint is an operator's alert endpoint: it checks each alert's
// Standard Webhooks signature and records the alerts by type.
type opsEndpoint struct {
	*httptest.Server
	hook *webhook.Hook
	mu   sync.Mutex
	got  []alerts.Alert
	raw  []map[string]any
}

func newOpsEndpoint(t *testing.T) *opsEndpoint {
	t.Helper()
	token, err := gitlab.GenerateSigningToken()
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := standardwebhooks.NewWebhook(token)
	if err != nil {
		t.Fatal(err)
	}
	o := &opsEndpoint{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("alert with a bad signature: %v: %s", err, body)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var a alerts.Alert
		var raw map[string]any
		if json.Unmarshal(body, &a) != nil || json.Unmarshal(body, &raw) != nil {
			t.Errorf("alert is not JSON: %s", body)
		}
		o.mu.Lock()
		o.got, o.raw = append(o.got, a), append(o.raw, raw)
		o.mu.Unlock()
	}))
	t.Cleanup(o.Close)
	o.hook = &webhook.Hook{ID: 1 << 52, Name: "ops", URL: o.URL + "/alerts", EnableSSLVerification: true, ReadOnly: true,
		Operator: true, Signing: gitlab.SigningTokens{Current: token}, AutoDisable: &webhook.AutoDisable{Mode: webhook.AutoDisableOff}}
	return o
}

// wait returns the alerts of typ once n arrived (bounded).
func (o *opsEndpoint) wait(t *testing.T, typ string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		o.mu.Lock()
		var out []map[string]any
		for i, a := range o.got {
			if a.Type == typ {
				out = append(out, o.raw[i])
			}
		}
		o.mu.Unlock()
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s alerts arrived, want %d", len(out), typ, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *opsEndpoint) count(typ string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, a := range o.got {
		if a.Type == typ {
			n++
		}
	}
	return n
}

// A hook that fails is disabled for a while, then delivers again: the
// operator's endpoint gets hook.disabled (temporarily, with until), then
// hook.enabled, and one dead-letter alert for the deliveries given up on
// meanwhile (rolled up), each signed.
func TestAlertsOfAFailingHook(t *testing.T) {
	t.Parallel()
	ops := newOpsEndpoint(t)
	var mu sync.Mutex
	failing := true
	rcv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	cfg := testConfig()
	cfg.Health.Threshold, cfg.Health.Base, cfg.Health.Max = 2, 500*time.Millisecond, 500*time.Millisecond
	cfg.Alerts = alerts.Config{DeadLetterInterval: 3 * time.Second}
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", rcv), ops.hook)
	ctx := context.Background()
	enqueue(t, rt, pushEvent(t, "acme/api"))
	enqueue(t, rt, pushEvent(t, "acme/api"))
	disabled := ops.wait(t, alerts.TypeHookDisabled, 1)[0]
	data := disabled["data"].(map[string]any)
	if data["hook_id"] != float64(1) || data["disabled"] != "temporarily" || data["disabled_until"] == nil ||
		data["last_status"] != "503" || disabled["namespace"] != "test" || disabled["instance"] != "c1" {
		t.Errorf("hook.disabled = %v", disabled)
	}
	// Both dead letters are told, rolled up (two alerts at most, if the
	// second came after the first roll-up: the gate holds it 3s).
	deadline := time.Now().Add(20 * time.Second)
	for total := 0; total < 2; {
		total = 0
		for _, a := range ops.wait(t, alerts.TypeDeadLettered, 1) {
			d := a["data"].(map[string]any)
			if d["hook_id"] != float64(1) || d["reasons"].(map[string]any)["exhausted"] != d["count"] {
				t.Fatalf("deliveries.dead_lettered = %v", d)
			}
			total += int(d["count"].(float64))
		}
		if total > 2 || time.Now().After(deadline) {
			t.Fatalf("dead letters told: %d, want 2", total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	for {
		if h, _ := rt.HookHealth(ctx, 1); h.AlertStatus == "executable" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	enqueue(t, rt, pushEvent(t, "acme/api"))
	enabled := ops.wait(t, alerts.TypeHookEnabled, 1)[0]["data"].(map[string]any)
	if enabled["hook_id"] != float64(1) || enabled["how"] != "delivered" {
		t.Errorf("hook.enabled = %v", enabled)
	}
	if n := ops.count(alerts.TypeHookDisabled); n != 1 {
		t.Errorf("%d hook.disabled alerts, want 1", n)
	}
}

// While Redis is down and events are spooled, the operator's endpoint
// hears it from the process itself; and again when Redis is back.
func TestAlertsOfRedisDownNeedNoRedis(t *testing.T) {
	t.Parallel()
	ops := newOpsEndpoint(t)
	redis := redistest.Start(t)
	rt := startOn(t, redis.URL, testConfig(), hookTo(t, 1, "acme/api", "http://127.0.0.1:1/x"), ops.hook)
	rt.SetFailover(Failover{Spooled: func() {}, Redis: "redis://test"})
	redis.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := rt.Enqueue(ctx, pushEvent(t, "acme/api"))
	cancel()
	if err == nil {
		t.Fatal("an enqueue with redis down succeeded")
	}
	down := ops.wait(t, alerts.TypeRedisUnreachable, 1)[0]["data"].(map[string]any)
	if down["redis"] != "redis://test" || down["spooling"] != true {
		t.Errorf("redis.unreachable = %v", down)
	}
	redis.Restart()
	ops.wait(t, alerts.TypeRedisReachable, 1)
}

// Deliveries that wait longer than queue_age raise one backlog alert per
// interval.
func TestAlertsOfABacklog(t *testing.T) {
	t.Parallel()
	ops := newOpsEndpoint(t)
	slow := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(700 * time.Millisecond) }))
	cfg := testConfig()
	cfg.HookConcurrency = 1
	cfg.Alerts = alerts.Config{QueueAge: 500 * time.Millisecond, DeadLetterInterval: time.Hour}
	rt := startWith(t, cfg, hookTo(t, 1, "acme/api", slow), ops.hook)
	for range 8 {
		enqueue(t, rt, pushEvent(t, "acme/api"))
	}
	backlog := ops.wait(t, alerts.TypeQueueBacklog, 1)[0]["data"].(map[string]any)
	if backlog["queue"] != "ready" || backlog["oldest_age_seconds"].(float64) <= 0.5 || backlog["threshold_seconds"] != 0.5 {
		t.Errorf("queue.backlog = %v", backlog)
	}
	time.Sleep(2 * monitorInterval) // the backlog lasts; the gate holds
	if n := ops.count(alerts.TypeQueueBacklog); n != 1 {
		t.Errorf("%d backlog alerts within the interval, want 1", n)
	}
}

// A 410 disables a hook until re-enabled (hook.disabled, permanently); a
// person re-enabling it is told too (hook.enabled, re-enabled). The
// operator's endpoint raises no alert about itself.
func TestAlertsOfAHookDisabledForGood(t *testing.T) {
	t.Parallel()
	ops := newOpsEndpoint(t)
	gone := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	rt := startWith(t, testConfig(), hookTo(t, 1, "acme/api", gone), ops.hook)
	enqueue(t, rt, pushEvent(t, "acme/api"))
	d := ops.wait(t, alerts.TypeHookDisabled, 1)[0]["data"].(map[string]any)
	if d["disabled"] != "permanently" || d["disabled_until"] != nil || d["last_status"] != "410" {
		t.Errorf("hook.disabled = %v", d)
	}
	if err := rt.ResetHealth(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	e := ops.wait(t, alerts.TypeHookEnabled, 1)[0]["data"].(map[string]any)
	if e["how"] != "re-enabled" || e["hook_id"] != float64(1) {
		t.Errorf("hook.enabled = %v", e)
	}
	ops.mu.Lock()
	defer ops.mu.Unlock()
	for _, a := range ops.got {
		if d, _ := a.Data.(map[string]any); d != nil && d["hook_id"] == float64(ops.hook.ID) {
			t.Errorf("an alert about the alert endpoint itself: %+v", a)
		}
	}
}
