package integration

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// Caddy configured for Redis Cluster or Sentinel captures and delivers.
func TestCaddyWithRedisClusterAndSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis Cluster and Sentinel")
	}
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) string
	}{
		{"cluster", func(t *testing.T) string { return "cluster " + redistest.StartCluster(t, 3).URL }},
		{"sentinel", func(t *testing.T) string { return "sentinel " + redistest.StartSentinel(t).URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, 0)
			app := newApp(t)
			redis := tc.redis(t)
			cfg := caddyfile("REDIS", "https://forge.example.com", app, hookBlock("ci", rcv.URL, "group acme", "push"))
			caddytest.NewTester(t).InitServer(strings.Replace(cfg, "redis REDIS", "redis "+redis, 1), "caddyfile")
			post(t, "/push?project=acme/api&branch=main", nil)
			if d := rcv.next(t); d.Header.Get("X-Gitlab-Event") != "Push Hook" {
				t.Fatalf("delivery %v", d.Header)
			}
		})
	}
}
