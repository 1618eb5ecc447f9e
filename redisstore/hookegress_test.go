package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A hook's client key and its egress proxy's credentials are sealed like
// its token: Redis holds neither in clear, and both come back as given;
// the client certificate and CAs, which are public, are kept as they are.
// Without an encryption key such a hook cannot be stored.
func TestHookEgressAndClientKeyAreSealed(t *testing.T) {
	hs, s, _ := newHookStore(t)
	ctx := context.Background()
	ns, err := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	if err != nil {
		t.Fatal(err)
	}
	r := &webhook.HookRecord{URL: "https://r.example/", Triggers: []string{"push"},
		EgressProxy: "http://egress:proxy-PLAIN@proxy.corp:3128", ClientCert: "-----BEGIN CERTIFICATE-----\nCERT\n",
		ClientKey: "-----BEGIN EC PRIVATE KEY-----\nKEY-PLAIN\n", CA: "-----BEGIN CERTIFICATE-----\nCA\n"}
	if err := hs.CreateHook(ctx, ns, r, 0); err != nil {
		t.Fatal(err)
	}
	raw := s.c.rdb.HGet(ctx, s.c.keys.Hooks(), "1").Val()
	for _, secretText := range []string{"proxy-PLAIN", "KEY-PLAIN"} {
		if strings.Contains(raw, secretText) {
			t.Errorf("the stored hook holds %q in clear: %s", secretText, raw)
		}
	}
	if !strings.Contains(raw, `"egress_proxy":"http://*****:*****@proxy.corp:3128"`) || !strings.Contains(raw, "CERT") {
		t.Errorf("stored hook %s: want the masked proxy and the certificate in clear", raw)
	}
	got, err := hs.GetHook(ctx, ns, r.ID)
	if err != nil || got.EgressProxy != r.EgressProxy || got.ClientKey != r.ClientKey || got.ClientCert != r.ClientCert || got.CA != r.CA {
		t.Fatalf("read back %+v, %v", got, err)
	}

	keyless := s.Hooks(nil)
	for _, r := range []*webhook.HookRecord{
		{URL: "https://r.example/", ClientKey: "k"},
		{URL: "https://r.example/", EgressProxy: "socks5://u:p@proxy.corp:1080"},
	} {
		if err := keyless.CreateHook(ctx, ns, r, 0); !errors.Is(err, secret.ErrNoKey) {
			t.Errorf("storing %+v without a key: %v, want ErrNoKey", r, err)
		}
	}
	plain := &webhook.HookRecord{URL: "https://r.example/", EgressProxy: "http://proxy.corp:3128"}
	if err := keyless.CreateHook(ctx, ns, plain, 0); err != nil {
		t.Errorf("a proxy without credentials needs no key: %v", err)
	}
}
