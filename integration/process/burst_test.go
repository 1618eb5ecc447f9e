package process

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// arrival is one delivery the receiver got.
type arrival struct{ key, eventUUID string }

// tally is a receiver that records deliveries by the sequence number the
// app put in each payload, and answers 200.
type tally struct {
	*httptest.Server
	mu    sync.Mutex
	bySeq map[int][]arrival
}

func newTally(t *testing.T, delay time.Duration) *tally {
	t.Helper()
	r := &tally{bySeq: map[int][]arrival{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p struct {
			Seq *int `json:"seq"`
		}
		body, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(body, &p); err != nil || p.Seq == nil {
			t.Errorf("receiver got a payload without seq: %q", body)
			return
		}
		time.Sleep(delay)
		r.mu.Lock()
		r.bySeq[*p.Seq] = append(r.bySeq[*p.Seq], arrival{req.Header.Get("Idempotency-Key"), req.Header.Get("X-Gitlab-Event-UUID")})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// missing lists the accepted sequence numbers that have not arrived.
func (r *tally) missing(accepted []bool) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for seq, ok := range accepted {
		if ok && len(r.bySeq[seq]) == 0 {
			out = append(out, seq)
		}
	}
	return out
}

// newApp is the upstream: POST /push?seq=N announces a push event whose
// payload carries N.
func newApp(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		fmt.Fprintf(w, `{"object_kind":"push","ref":"refs/heads/main","seq":%s,"project":{"path_with_namespace":"acme/api"}}`,
			r.URL.Query().Get("seq"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func config(redisURL, appURL, hookURL string) func(adminAddr, httpAddr string) string {
	return configWith(redisURL, appURL, hookURL, "", "")
}

// configWith is config with more options in the webhooks block and the
// hook block.
func configWith(redisURL, appURL, hookURL, options, hookOptions string) func(adminAddr, httpAddr string) string {
	return func(_, httpAddr string) string {
		return fmt.Sprintf(`{
	admin fd/%d
	http_port %s
	skip_install_trust
	auto_https off
	default_bind 127.0.0.1
	grace_period 1s
	webhooks {
		redis %s
		allow_local_requests
		timeout 2s
		lease 4s
		claim_interval 500ms%s
		hook receiver {
			url %s
			group acme
			events push
			%s
		}
	}
}

http://%s {
	bind fd/%d
	webhooks_capture
	reverse_proxy %s
}
`, adminFD, httpAddr[strings.LastIndexByte(httpAddr, ':')+1:], redisURL, options, hookURL, hookOptions, httpAddr,
			siteFD, strings.TrimPrefix(appURL, "http://"))
	}
}

// burst sends n events through Caddy from a few clients; disrupt runs on
// the test goroutine once a third of them were accepted. A request that
// fails (Caddy is down) is not retried; its event counts as not accepted.
// It returns which sequence numbers got a 2xx.
func burst(t *testing.T, caddyAddr string, n int, disrupt func()) []bool {
	t.Helper()
	accepted := make([]bool, n)
	var mu sync.Mutex
	var next, okCount atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				seq := int(next.Add(1) - 1)
				if seq >= n {
					return
				}
				resp, err := client.Post(fmt.Sprintf("http://%s/push?seq=%d", caddyAddr, seq), "text/plain", nil)
				if err != nil {
					time.Sleep(100 * time.Millisecond) // down: go on slowly
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					mu.Lock()
					accepted[seq] = true
					mu.Unlock()
					okCount.Add(1)
				}
				time.Sleep(20 * time.Millisecond) // a burst that lasts through the disruption
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for okCount.Load() < int64(n/3) && next.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	disrupt()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the burst did not finish within 60s")
	}
	mu.Lock()
	defer mu.Unlock()
	return accepted
}

// check waits (bounded) for every accepted event to arrive, then asserts
// that duplicates carry the same Idempotency-Key and X-Gitlab-Event-UUID,
// and reports the counts.
func check(t *testing.T, rcv *tally, accepted []bool, proc *caddyProc) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(rcv.missing(accepted)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // late duplicates
	nAccepted := 0
	for _, ok := range accepted {
		if ok {
			nAccepted++
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	deliveries, dups, unaccepted := 0, 0, 0
	keys := map[string]int{}
	for seq, as := range rcv.bySeq {
		deliveries += len(as)
		dups += len(as) - 1
		if !accepted[seq] {
			unaccepted++ // queued, but the client never saw the answer
		}
		for _, a := range as[1:] {
			if a != as[0] {
				t.Errorf("event %d arrived %d times with different keys: %+v", seq, len(as), as)
				break
			}
		}
		if other, seen := keys[as[0].key]; seen {
			t.Errorf("events %d and %d share the Idempotency-Key %s", seq, other, as[0].key)
		}
		keys[as[0].key] = seq
	}
	t.Logf("sent %d, accepted (2xx) %d, arrived %d distinct in %d deliveries (%d duplicates), %d arrived without a 2xx to the client",
		len(accepted), nAccepted, len(rcv.bySeq), deliveries, dups, unaccepted)
	if missing := rcv.missingLocked(accepted); len(missing) > 0 {
		t.Errorf("%d accepted events never arrived: %v", len(missing), missing)
		if proc != nil {
			t.Logf("caddy output:\n%s", proc.log())
		}
	}
}

func (r *tally) missingLocked(accepted []bool) []int {
	var out []int
	for seq, ok := range accepted {
		if ok && len(r.bySeq[seq]) == 0 {
			out = append(out, seq)
		}
	}
	return out
}

// kill -9 of Caddy in the middle of a burst, and a restart on the same
// data directory: every event Caddy answered with a 2xx arrives.
func TestKillCaddyMidBurst(t *testing.T) {
	redis := redistest.Start(t, "--appendonly", "yes")
	rcv := newTally(t, 5*time.Millisecond) // slow enough to have work in flight at the kill
	app := newApp(t)
	proc := newCaddy(t, config(redis.URL, app.URL, rcv.URL+"/hook"))
	proc.start()

	accepted := burst(t, proc.httpAddr, 300, func() {
		proc.kill()
		proc.start()
	})
	check(t, rcv, accepted, proc)
}

// Redis killed (SIGKILL) and started again (AOF on) in the middle of a
// burst: the client's responses are not failed, and every event Caddy
// answered with a 2xx arrives (those captured while Redis was down went
// through the local spool). With appendfsync always, as docs/deployment.md
// says for no loss at all: with everysec, Redis may answer a write whose
// AOF write it postponed (a busy disk), and a kill then loses it.
func TestRedisRestartMidBurst(t *testing.T) {
	redis := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rcv := newTally(t, 0)
	app := newApp(t)
	proc := newCaddy(t, config(redis.URL, app.URL, rcv.URL+"/hook"))
	proc.start()

	accepted := burst(t, proc.httpAddr, 300, func() {
		redis.Stop()
		time.Sleep(3 * time.Second) // longer than enqueue_timeout (2s): events are spooled
		redis.Restart()
	})
	for seq, ok := range accepted {
		if !ok {
			t.Errorf("the client's request %d failed while Redis was down", seq)
		}
	}
	check(t, rcv, accepted, proc)
	spooled, replayed := proc.metric(`caddy_webhooks_events_spooled_total{namespace="webhooks"}`),
		proc.metric(`caddy_webhooks_events_replayed_total{namespace="webhooks"}`)
	t.Logf("events spooled while redis was down: %s, replayed: %s", spooled, replayed)
	if spooled == "" || spooled == "0" || spooled != replayed {
		t.Errorf("spooled %q, replayed %q: want the same, more than 0", spooled, replayed)
	}
}
