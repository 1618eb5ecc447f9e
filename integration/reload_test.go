package integration

import (
	"context"
	"fmt"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Reloads under a steady stream of events must not lose any, deliver any
// twice, or start a second set of workers; new settings apply at once.
func TestReloadUnderLoadKeepsWorkAndOneSetOfWorkers(t *testing.T) {
	rcv := newReceiver(t, 10*time.Millisecond) // slow enough that work is queued at each reload
	app := newApp(t)
	hooks := hookBlock("ci", rcv.URL, "group acme", "push")
	tester, redis := start(t, func(redisURL string) string {
		return caddyfile(redisURL, "https://gen1.example.com", app, hooks)
	})

	// A client sends events without pause (bounded in count and time)
	// while the config is reloaded twice.
	var mu sync.Mutex
	accepted := map[string]bool{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < 400 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			branch := fmt.Sprintf("b%d", i)
			resp, err := http.Post(caddyBase+"/push?project=acme/api&branch="+branch, "", nil)
			if err != nil {
				continue // a request the reload cut off was not accepted
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				accepted["refs/heads/"+branch] = true
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	tester.InitServer(caddyfile(redis.URL, "https://gen2.example.com", app, hooks), "caddyfile")
	time.Sleep(300 * time.Millisecond)
	tester.InitServer(caddyfile(redis.URL, "https://gen3.example.com", app, hooks), "caddyfile")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	// After the last reload, its settings are in effect.
	if resp, body := post(t, "/push?project=acme/api&branch=final", nil); resp.StatusCode != 200 {
		t.Fatalf("after reloads: %s", answered(resp, body))
	}
	mu.Lock()
	accepted["refs/heads/final"] = true
	want := len(accepted)
	mu.Unlock()
	if want < 50 {
		t.Fatalf("only %d events were accepted during the reloads", want)
	}

	keys := map[string]bool{}
	refs := map[string]bool{}
	finalInstance := ""
	for len(refs) < want {
		d := rcv.next(t)
		key := d.Header.Get("Idempotency-Key")
		if keys[key] {
			t.Fatalf("delivered twice: %s", d.Body)
		}
		keys[key] = true
		for ref := range accepted {
			if strings.Contains(d.Body, `"ref":"`+ref+`"`) {
				refs[ref] = true
				if ref == "refs/heads/final" {
					finalInstance = d.Header.Get("X-Gitlab-Instance")
				}
			}
		}
	}
	rcv.quiet(t, 1500*time.Millisecond)
	t.Logf("%d events accepted across two reloads, all delivered once", want)
	if finalInstance != "https://gen3.example.com" {
		t.Errorf("event after the reloads went out with X-Gitlab-Instance %q, want the new setting", finalInstance)
	}
	if got := metric(t, "caddy_webhooks_runtimes_running"); got != "1" {
		t.Errorf("runtimes running after reloads = %q, want 1", got)
	}
	c := redis.Client()
	defer c.Close()
	consumers, err := c.XInfoConsumers(context.Background(), redisstore.Keys{Namespace: "webhooks"}.Ready(0), "deliver").Result()
	if err != nil || len(consumers) != 1 {
		t.Errorf("delivery consumers = %v, %v; want one", consumers, err)
	}
}
