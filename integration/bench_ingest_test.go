package integration

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// BenchmarkIngest posts 1 KB push events to webhooks_ingest in a real Caddy
// (in this process) with a real redis-server, on loopback: one event per
// request against NDJSON batches, from one client and from eight. It
// reports events/s; the loop is bounded by b.N (-benchtime). Run under the e2e lock:
//
//	flock /tmp/e2e.lock go test -run '^$' -bench BenchmarkIngest -benchtime 3s ./integration/
func BenchmarkIngest(b *testing.B) {
	redis := redistest.Start(b)
	caddytest.NewTester(b).InitServer(testCaddyfile(`{
	webhooks {
		redis %s
		spool_dir off
	}
}

localhost:9080 {
	webhooks_ingest {
		token bench %s
		max_batch 1000
	}
}
`, redis.URL, ingestAll), "caddyfile")
	pad := strings.Repeat("x", 900)
	line := `{"trigger":"push","project":"acme/api","ref":"refs/heads/main","payload":{"object_kind":"push","ref":"refs/heads/main","pad":"` + pad + `"}}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	post := func(b *testing.B, body, ct string) bool {
		req, _ := http.NewRequest(http.MethodPost, caddyBase+"/", strings.NewReader(body))
		req.Header.Set("PRIVATE-TOKEN", ingestAll)
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return false
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Errorf("%s %s: %s %q", req.Method, req.URL, resp.Status, got)
			return false
		}
		return true
	}
	for _, clients := range []int{1, 8} {
		for _, tc := range []struct {
			name  string
			batch int
		}{{"one-per-request", 1}, {"ndjson-10", 10}, {"ndjson-100", 100}, {"ndjson-1000", 1000}} {
			body := line
			ct := "application/json"
			if tc.batch > 1 {
				body, ct = strings.Repeat(line+"\n", tc.batch), "application/x-ndjson"
			}
			b.Run(fmt.Sprintf("clients-%d/%s", clients, tc.name), func(b *testing.B) {
				started := time.Now()
				if clients == 1 {
					for b.Loop() {
						if !post(b, body, ct) {
							return
						}
					}
				} else {
					b.SetParallelism(clients / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if !post(b, body, ct) {
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N*tc.batch)/time.Since(started).Seconds(), "events/s")
			})
		}
	}
}
