package process

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/ordercheck"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// sequence is a receiver that records the seq of each payload in the order
// requests arrive, and answers 500 to every fifth.
type sequence struct {
	*httptest.Server
	mu      sync.Mutex
	arrived []int
}

func newSequence(t *testing.T) *sequence {
	t.Helper()
	s := &sequence{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Seq *int }
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil || p.Seq == nil {
			t.Errorf("receiver got a payload without seq: %q", body)
			return
		}
		s.mu.Lock()
		s.arrived = append(s.arrived, *p.Seq)
		fail := len(s.arrived)%5 == 0
		s.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// orderedConfig is config with an ordered hook on four shards, retried
// quickly and never disabled.
func orderedConfig(redisURL, appURL, hookURL string) func(adminAddr, httpAddr string) string {
	return configWith(redisURL, appURL, hookURL, `
		shards 4
		max_attempts 50
		retry_backoff 50ms
		max_retry_backoff 500ms
		disable_after_failures 1000`, "ordered")
}

// Two Caddy processes capture one event after the other (each request
// answered before the next is sent), one of them is killed with SIGKILL
// and started again, Redis is killed and started again (the events of the
// outage go through both processes' spools), and the receiver answers 500
// to a fifth of the requests: the ordered hook's receiver gets every event
// Caddy accepted, and gets them in capture order (a retry may repeat an
// event; no event arrives before one captured earlier).
func TestOrderedHookKeepsCaptureOrderThroughKillsAndRedisRestart(t *testing.T) {
	redis := redistest.Start(t, "--appendonly", "yes")
	rcv := newSequence(t)
	app := newApp(t)
	a := newCaddy(t, orderedConfig(redis.URL, app.URL, rcv.URL+"/hook"))
	b := newCaddy(t, orderedConfig(redis.URL, app.URL, rcv.URL+"/hook"))
	a.start()
	b.start()

	const n = 240
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(p *caddyProc, seq int) bool {
		resp, err := client.Post(fmt.Sprintf("http://%s/push?seq=%d", p.httpAddr, seq), "text/plain", nil)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode/100 == 2
	}
	accepted := make([]bool, n)
	aUp := true
	redisBack := make(chan struct{})
	for seq := range n {
		switch seq {
		case n / 6:
			a.kill()
			aUp = false
		case n / 3:
			a.start()
			aUp = true
		case n / 2:
			redis.Stop()
			go func() { // the events of the outage are spooled
				defer close(redisBack)
				time.Sleep(4 * time.Second) // longer than enqueue_timeout: both processes spool
				redis.Restart()
			}()
		}
		via := b
		if seq%2 == 0 && aUp {
			via = a
		}
		accepted[seq] = send(via, seq)
	}
	<-redisBack
	var want []int
	for seq, ok := range accepted {
		if ok {
			want = append(want, seq)
		}
	}
	if len(want) < n*9/10 {
		t.Fatalf("only %d of %d events were accepted", len(want), n)
	}

	deadline := time.Now().Add(90 * time.Second)
	for {
		rcv.mu.Lock()
		got := append([]int(nil), rcv.arrived...)
		rcv.mu.Unlock()
		seen := map[int]bool{}
		for _, q := range got {
			seen[q] = true
		}
		missing := 0
		for _, q := range want {
			if !seen[q] {
				missing++
			}
		}
		if missing == 0 {
			n := ordercheck.Check(t, got, want)
			t.Logf("%d accepted, %d arrived in capture order in %d requests (%d repeats: retries of a 500, resends after the kill)",
				len(want), n, len(got), len(got)-n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted events never arrived; arrived %v\n%s\n%s", missing, len(want), got, a.log(), b.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	spooledA := a.metric(`caddy_webhooks_events_spooled_total{namespace="webhooks"}`)
	spooledB := b.metric(`caddy_webhooks_events_spooled_total{namespace="webhooks"}`)
	t.Logf("events spooled while redis was down: %q by one process, %q by the other", spooledA, spooledB)
	if spooledA == "" || spooledA == "0" || spooledB == "" || spooledB == "0" {
		t.Errorf("both processes should have spooled events of the outage (it outlasts enqueue_timeout)")
	}
}
