package integration

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Without allow_local_requests, a hook whose name resolves to loopback
// gets nothing: the connection is refused when it is dialled, and the
// attempt fails as an internal error naming the rule.
func TestLocalReceiversAreRefusedByDefault(t *testing.T) {
	rcv := newReceiver(t, 0)
	app := newApp(t)
	port := rcv.Listener.Addr().(*net.TCPAddr).Port
	url := fmt.Sprintf("http://localhost:%d/hook", port)
	start(t, func(redisURL string) string {
		cfg := caddyfile(redisURL, "https://forge.example.com", app,
			"\t\tmax_attempts 1\n"+hookBlock("ssrf", url, "group acme", "push"))
		return strings.Replace(cfg, "\t\tallow_local_requests\n", "", 1)
	})
	failed := func() float64 {
		v, _ := strconv.ParseFloat(metric(t, `caddy_webhooks_deliveries_total{result="internal_error"}`), 64)
		return v
	}
	before := failed()
	if resp, _ := post(t, "/push?project=acme/api&branch=main", nil); resp.StatusCode != 200 {
		t.Fatalf("client got %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for failed() == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if failed() == before {
		t.Fatal("no failed attempt recorded within 10s")
	}
	rcv.quiet(t, 500*time.Millisecond)
}
