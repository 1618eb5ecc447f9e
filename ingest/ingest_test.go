package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/api"
	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/spool"
)

const ingestToken = "ingest-test-token-0123456789"

// newIngest returns a handler whose runtime writes to a real Redis (its
// workers are not started, so events stay in the stream to be read).
func newIngest(t *testing.T, redisURL string) *Handler {
	t.Helper()
	store, err := redisstore.New(redisstore.Options{URL: redisURL, Namespace: "cap", Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt := engine.NewRuntime(store, "test", zaptest.NewLogger(t))
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	stores.Store(rt, store)
	in, err := New(rt, rt.Idempotency(), Options{Tokens: []api.Token{{Name: "jobs", Value: ingestToken}}, Logger: zaptest.NewLogger(t),
		Settings: Settings{MaxBody: 1 << 20, MaxRequest: 1 << 20, MaxBatch: 10, EnqueueTimeout: 300 * time.Millisecond,
			IdempotencyWindow: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// runtimeOf is the engine runtime the handler queues to.
func runtimeOf(in *Handler) *engine.Runtime { return in.rt.(*engine.Runtime) }

// stores are the stores under the tests' runtimes, to look inside.
var stores sync.Map // *engine.Runtime → *redisstore.Store

// storeOf is the store under a handler of newIngest.
func storeOf(in *Handler) *redisstore.Store {
	s, _ := stores.Load(runtimeOf(in))
	return s.(*redisstore.Store)
}

func postIngest(t *testing.T, in *Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	rec := httptest.NewRecorder()
	in.ServeHTTP(rec, req)
	return rec
}

const ingestLine = `{"trigger":"push","project":"acme/api","ref":"refs/heads/main","payload":{"object_kind":"push"}}` + "\n"

// 503 with Retry-After only when neither Redis nor the spool takes the
// event; with a spool the same outage is a 202.
func TestIngestUnavailableOnlyWithoutRedisAndSpool(t *testing.T) {
	redis := redistest.Start(t)
	in := newIngest(t, redis.URL)
	redis.StopAndHold()

	rec := postIngest(t, in, ingestLine+ingestLine)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
		!strings.Contains(rec.Body.String(), `"message":"503 Service Unavailable"`) {
		t.Fatalf("no redis, no spool: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}

	in.spool = spool.New(t.TempDir(), "ingest", 1<<20, zaptest.NewLogger(t))
	t.Cleanup(func() { in.spool.Close() })
	start := time.Now()
	rec = postIngest(t, in, ingestLine+ingestLine+ingestLine)
	if rec.Code != http.StatusAccepted || in.spool.Pending() != 3 {
		t.Fatalf("no redis, spool: %d %s, %d spooled", rec.Code, rec.Body, in.spool.Pending())
	}
	// Only the first event waits on Redis; the rest go straight to the spool.
	if d := time.Since(start); d > 2*time.Duration(in.EnqueueTimeout)+time.Second {
		t.Fatalf("a 3-event batch took %v with redis down", d)
	}
}

// Once Redis is known to be down, later requests spool at once, those with
// an Idempotency-Key too (its check is what would wait for Redis), and the
// spool is replayed as soon as Redis answers again.
func TestIngestRequestsSpoolAtOnceWhileRedisIsDown(t *testing.T) {
	redis := redistest.Start(t)
	in := newIngest(t, redis.URL)
	in.EnqueueTimeout = 2 * time.Second // the default
	in.spool = spool.New(t.TempDir(), "ingest", 1<<20, zaptest.NewLogger(t))
	t.Cleanup(func() { in.spool.Close() })
	server := "ingest-test-" + redis.Addr
	runtimeOf(in).SetFailover(engine.Failover{Spooled: in.spool.Wake, Redis: server}) // as the webhooks app does
	if err := in.spool.Start(runtimeOf(in).Replay); err != nil {
		t.Fatal(err)
	}
	skipped := func() float64 { return testutil.ToFloat64(metrics.EnqueuesSkipped.WithLabelValues("cap", server)) }

	redis.Stop()
	const n = 5
	start := time.Now()
	for i := range n {
		req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(ingestLine))
		req.Header.Set("PRIVATE-TOKEN", ingestToken)
		req.Header.Set("Idempotency-Key", fmt.Sprintf("job-%d", i))
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("request %d with redis down: %d %s", i, rec.Code, rec.Body)
		}
	}
	t.Logf("%d requests with redis down took %s", n, time.Since(start))
	if got := in.spool.Pending(); got != n {
		t.Fatalf("%d events spooled, want %d", got, n)
	}
	// Only the first request tried Redis (its key check found it gone).
	if got := skipped(); got != n-1 {
		t.Fatalf("enqueues_skipped_total = %v, want %d", got, n-1)
	}

	redis.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for in.spool.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := storeOf(in)
	if got, err := st.Client().XLen(context.Background(), st.Keys().Events(0)).Result(); err != nil || got != n {
		t.Fatalf("%d events in redis after it came back (%v), want %d", got, err, n)
	}
}

// Concurrent retries with one Idempotency-Key queue one event, and all get
// its ID.
func TestIngestIdempotencyKeyUnderConcurrentRetries(t *testing.T) {
	redis := redistest.Start(t)
	in := newIngest(t, redis.URL)
	ids := make(chan string, 5)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(ingestLine))
			req.Header.Set("PRIVATE-TOKEN", ingestToken)
			req.Header.Set("Idempotency-Key", "job-42")
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, req)
			var ans struct {
				EventIDs []string `json:"event_ids"`
			}
			if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &ans) != nil || len(ans.EventIDs) != 1 {
				t.Errorf("%d %s", rec.Code, rec.Body)
				return
			}
			ids <- ans.EventIDs[0]
		}()
	}
	wg.Wait()
	close(ids)
	first := ""
	for id := range ids {
		if first == "" {
			first = id
		}
		if id != first {
			t.Errorf("retries answered %s and %s", first, id)
		}
	}
	st := storeOf(in)
	if n, err := st.Client().XLen(context.Background(), st.Keys().Events(0)).Result(); err != nil || n != 1 {
		t.Fatalf("%d events queued (%v), want 1", n, err)
	}
}

// Behind forward_auth (trust_upstream_auth), a browser's cross-site post is
// refused as the hooks API refuses it; a token or a non-browser client
// passes.
func TestIngestRefusesCrossSitePostsWithoutAToken(t *testing.T) {
	redis := redistest.Start(t)
	in := newIngest(t, redis.URL)
	auth, err := api.NewAuthenticator(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	in.auth = auth
	post := func(h map[string]string) int {
		req := httptest.NewRequest(http.MethodPost, "http://forge.example.com/events", strings.NewReader(ingestLine))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-site browser post: %d, want 403", code)
	}
	if code := post(nil); code != http.StatusAccepted {
		t.Errorf("curl-like post behind forward_auth: %d, want 202", code)
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusAccepted {
		t.Errorf("same-origin post: %d, want 202", code)
	}
}
