package module

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/api"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/spool"
)

const ingestToken = "ingest-test-token-0123456789"

func newIngest(t *testing.T, redisURL string) *Ingest {
	t.Helper()
	c := newCapture(t, redisURL) // a runtime on a real Redis
	auth, err := api.NewAuthenticator([]api.Token{{Name: "jobs", Value: ingestToken}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &Ingest{MaxBody: 1 << 20, MaxRequest: 1 << 20, MaxBatch: 10, EnqueueTimeout: caddy.Duration(300 * time.Millisecond),
		IdempotencyWindow: caddy.Duration(time.Minute), auth: auth, rt: c.rt, logger: zaptest.NewLogger(t)}
}

func postIngest(t *testing.T, in *Ingest, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	req.Header.Set("Content-Type", "application/x-ndjson")
	rec := httptest.NewRecorder()
	if err := in.ServeHTTP(rec, req, nil); err != nil {
		t.Fatal(err)
	}
	return rec
}

const ingestLine = `{"trigger":"push","project":"acme/api","ref":"refs/heads/main","payload":{"object_kind":"push"}}` + "\n"

// 503 with Retry-After only when neither Redis nor the spool takes the
// event; with a spool the same outage is a 202.
func TestIngestUnavailableOnlyWithoutRedisAndSpool(t *testing.T) {
	redis := redistest.Start(t)
	in := newIngest(t, redis.URL)
	redis.Stop()

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
			in.ServeHTTP(rec, req, nil)
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
	st := in.rt.Store()
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
		in.ServeHTTP(rec, req, nil)
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
