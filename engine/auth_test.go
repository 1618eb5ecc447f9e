package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// An ACL user with a password reaches Redis through the URL, and the
// password shows up in no log line.
func TestRedisACLUserAndPasswordStayOutOfLogs(t *testing.T) {
	t.Parallel()
	const password = "acl-pw-9f2c1e"
	redis := redistest.Start(t, "--user", "default", "off",
		"--user", "webhooks", "on", ">"+password, "~*", "&*", "+@all")
	rcv := newScripted(t, http.StatusOK)
	core, logs := observer.New(zap.DebugLevel)
	url := "redis://webhooks:" + password + "@" + redis.Addr + "/0"
	store, err := redisstore.New(redisstore.Options{URL: url, Namespace: "acl", Readers: 2})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := webhook.NewHookSet([]*webhook.Hook{hookTo(t, 1, "acme/api", rcv.URL)})
	rt := NewRuntime(store, "c1", zap.New(core))
	rt.Configure(testConfig(), set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 1)

	if _, err := redisstore.New(redisstore.Options{URL: "redis://webhooks:" + password + "@%zz", Namespace: "x"}); err == nil ||
		strings.Contains(err.Error(), password) {
		t.Errorf("a bad URL's error must not carry the password: %v", err)
	}
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, password) {
			t.Fatalf("password in a log line: %s", line)
		}
	}
}

// Deliveries work over TLS to Redis with a private CA; without the CA the
// server's certificate is refused.
func TestRedisOverTLSWithAPrivateCA(t *testing.T) {
	t.Parallel()
	redis := redistest.StartTLS(t)
	rcv := newScripted(t, http.StatusOK)
	url := "rediss://" + redis.TLSAddr + "/0"
	store, err := redisstore.New(redisstore.Options{URL: url, Namespace: "tls", Readers: 2, CAFile: redis.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	set, _ := webhook.NewHookSet([]*webhook.Hook{hookTo(t, 1, "acme/api", rcv.URL)})
	rt := NewRuntime(store, "c1", nil)
	rt.Configure(testConfig(), set)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	enqueue(t, rt, pushEvent(t, "acme/api"))
	rcv.wait(t, 1)

	untrusted, err := redisstore.New(redisstore.Options{URL: url, Namespace: "tls"})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if err := untrusted.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	if _, err := redisstore.New(redisstore.Options{URL: "redis://" + redis.TLSAddr, Namespace: "x", CAFile: redis.CAFile}); err == nil {
		t.Fatal("a CA with a plain redis:// URL must be refused")
	}
}
