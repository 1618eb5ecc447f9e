package engine

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// keyReceiver counts deliveries per Idempotency-Key.
type keyReceiver struct {
	mu   sync.Mutex
	keys map[string]int
}

func (k *keyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.keys[r.Header.Get("Idempotency-Key")]++
	k.mu.Unlock()
}

// burst enqueues n events (retrying each until Redis accepts it, bounded),
// calling disrupt halfway, and returns the events accepted.
func burst(t *testing.T, rt *Runtime, n int, disrupt func()) []*webhook.Event {
	t.Helper()
	var accepted []*webhook.Event
	for i := range n {
		if i == n/2 {
			disrupt()
		}
		ev := pushEvent(t, "acme/api")
		deadline := time.Now().Add(20 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := rt.Enqueue(ctx, ev)
			cancel()
			if err == nil {
				accepted = append(accepted, ev)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("event %d not accepted within 20s: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return accepted
}

// allArrive waits until every accepted event reached the receiver.
func allArrive(t *testing.T, rcv *keyReceiver, accepted []*webhook.Event) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, dups := 0, 0
		rcv.mu.Lock()
		for _, ev := range accepted {
			switch n := rcv.keys[webhook.IdempotencyKey(ev.ID, 1)]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
		}
		rcv.mu.Unlock()
		if missing == 0 {
			t.Logf("accepted %d, all arrived, %d duplicates (same Idempotency-Key)", len(accepted), dups)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d, %d never arrived", len(accepted), missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func topologyRuntime(t *testing.T, url, mode string, replicaAcks int, rcvURL string) *Runtime {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: url, Mode: mode, Namespace: "topo", Readers: 2, ReplicaAcks: replicaAcks})
	if err != nil {
		t.Fatal(err)
	}
	h := pushHook(t, 1, "acme/api", "")
	h.URL = rcvURL
	set, _ := webhook.NewHookSet([]*webhook.Hook{h})
	rt := NewRuntime(store, "c1", nil)
	cfg := testConfig()
	cfg.Retry.MaxAttempts = 5
	rt.Configure(cfg, set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	return rt
}

func TestRedisClusterNodeRestartMidBurst(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cluster := redistest.StartCluster(t, 3)
	rcv := &keyReceiver{keys: map[string]int{}}
	srv := newServer(t, rcv)
	rt := topologyRuntime(t, cluster.URL, redisstore.ModeCluster, 0, srv)
	// Restart the node that holds the deliveries stream.
	node := cluster.NodeFor(t, rt.store.Keys().Ready(0))
	accepted := burst(t, rt, 200, func() {
		node.Restart()
		cluster.WaitOK(t)
	})
	allArrive(t, rcv, accepted)
}

// sentinelRuntime starts a Sentinel topology and a runtime on it that
// delivers to a receiver; it runs the test in parallel.
func sentinelRuntime(t *testing.T, replicaAcks int) (*redistest.Sentinel, *keyReceiver, *Runtime) {
	t.Helper()
	t.Parallel()
	if testing.Short() {
		t.Skip("starts Redis with a replica and a sentinel")
	}
	st := redistest.StartSentinel(t)
	rcv := &keyReceiver{keys: map[string]int{}}
	return st, rcv, topologyRuntime(t, st.URL, redisstore.ModeSentinel, replicaAcks, newServer(t, rcv))
}

func TestRedisSentinelFailoverMidBurst(t *testing.T) {
	// An event counts as accepted once the replica has it too (WAIT), so
	// the failover cannot lose it.
	st, rcv, rt := sentinelRuntime(t, 1)
	accepted := burst(t, rt, 200, func() { st.Failover(t) })
	allArrive(t, rcv, accepted)
}

// Closing the runtime (a Caddy reload or stop) takes a bounded time even
// when the whole Sentinel topology is gone: the old config's cleanup holds
// up the next config's load.
func TestCloseWithSentinelTopologyDown(t *testing.T) {
	st, rcv, rt := sentinelRuntime(t, 0)
	allArrive(t, rcv, burst(t, rt, 5, func() {}))
	st.Stop()
	// Captures keep coming (each waits up to 10s, as a slow client
	// would): their pipelines keep asking the dead sentinel for the master.
	var wg sync.WaitGroup
	defer wg.Wait()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = rt.Enqueue(ctx, pushEvent(t, "acme/api"))
		}()
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if err := rt.Close(time.Second); err != nil {
		t.Logf("close: %v", err)
	}
	took := time.Since(start)
	t.Logf("close took %v", took)
	if took > 3*time.Second {
		t.Fatalf("closing with Redis down took %v, want under 3s", took)
	}
}
