package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func newHookStore(t *testing.T) (*Hooks, *Store, *secret.Box) {
	t.Helper()
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "hooktest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	key := make([]byte, secret.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s.Hooks(box), s, box
}

func TestNamespaceIDsAssignedOnFirstUse(t *testing.T) {
	hs, _, _ := newHookStore(t)
	ctx := context.Background()
	a, err := hs.NamespaceByPath(ctx, webhook.KindProject, "Acme/API")
	if err != nil || a.ID != 1 || a.Path != "Acme/API" {
		t.Fatalf("first = %+v, %v", a, err)
	}
	again, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	if again.ID != 1 || again.Path != "Acme/API" {
		t.Fatalf("same path, other case = %+v; want id 1 and the first spelling", again)
	}
	g, _ := hs.NamespaceByPath(ctx, webhook.KindGroup, "acme")
	if g.ID != 2 {
		t.Fatalf("group id = %d, want 2", g.ID)
	}
	byID, ok, err := hs.NamespaceByID(ctx, webhook.KindProject, 1)
	if err != nil || !ok || byID.Path != "Acme/API" {
		t.Fatalf("NamespaceByID(1) = %+v, %v, %v", byID, ok, err)
	}
	if _, ok, _ := hs.NamespaceByID(ctx, webhook.KindGroup, 1); ok {
		t.Fatal("project id 1 resolved as a group")
	}
	if _, ok, _ := hs.NamespaceByID(ctx, webhook.KindProject, 99); ok {
		t.Fatal("unknown id resolved")
	}
}

// A token scope gives ids to at most its limit of paths; paths that have
// one do not count again, and each scope counts its own.
func TestClaimNamespaceCapsAScope(t *testing.T) {
	hs, _, _ := newHookStore(t)
	ctx := context.Background()
	known, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "tenant/known")
	for i := range 2 {
		if _, err := hs.ClaimNamespace(ctx, webhook.KindProject, fmt.Sprintf("tenant/p%d", i), "Tenant", 2); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
	}
	if ns, err := hs.ClaimNamespace(ctx, webhook.KindProject, "tenant/p2", "tenant", 2); !errors.Is(err, ErrNamespaceLimit) {
		t.Fatalf("third claim = %+v, %v; want ErrNamespaceLimit", ns, err)
	}
	if _, ok, _ := hs.LookupNamespace(ctx, webhook.KindProject, "tenant/p2"); ok {
		t.Fatal("a refused claim gave the path an id")
	}
	for _, c := range []struct{ path, scope string }{
		{"tenant/p0", "tenant"},    // has its id: no new one
		{"tenant/known", "tenant"}, // given one outside the scope's writes
		{"other/p0", "other"},      // another scope
		{"tenant/p9", ""},          // no scope: no cap
	} {
		ns, err := hs.ClaimNamespace(ctx, webhook.KindProject, c.path, c.scope, 2)
		if err != nil || ns.ID == 0 {
			t.Errorf("claim %s under %q = %+v, %v", c.path, c.scope, ns, err)
		}
		if c.path == "tenant/known" && ns.ID != known.ID {
			t.Errorf("tenant/known got id %d, had %d", ns.ID, known.ID)
		}
	}
}

func TestLookupNamespaceAllocatesNothing(t *testing.T) {
	hs, s, _ := newHookStore(t)
	ctx := context.Background()
	if ns, ok, err := hs.LookupNamespace(ctx, webhook.KindProject, "acme/new"); err != nil || ok {
		t.Fatalf("lookup of a new path = %+v, %v, %v; want not found", ns, ok, err)
	}
	if n, _ := s.c.rdb.Exists(ctx, s.c.keys.NamespaceSeq(), s.c.keys.NamespaceByPath(), s.c.keys.NamespaceByID()).Result(); n != 0 {
		t.Fatalf("a lookup created %d namespace keys", n)
	}
	a, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "Acme/New")
	got, ok, err := hs.LookupNamespace(ctx, webhook.KindProject, "acme/NEW")
	if err != nil || !ok || got != a {
		t.Fatalf("lookup after a write = %+v, %v, %v; want %+v", got, ok, err, a)
	}
	if _, ok, _ := hs.LookupNamespace(ctx, webhook.KindGroup, "acme/new"); ok {
		t.Fatal("a project path resolved as a group")
	}
}

func TestHookCRUDAndSecretsAtRest(t *testing.T) {
	hs, s, _ := newHookStore(t)
	ctx := context.Background()
	ns, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	r := &webhook.HookRecord{
		URL: "https://example.com/{path}", Token: "TOKEN-PLAINTEXT", Triggers: []string{"push"},
		URLVariables: map[string]string{"path": "VAR-PLAINTEXT"}, CustomHeaders: map[string]string{"X-A": "HDR-PLAINTEXT"},
		EnableSSLVerification: true, CreatedAt: time.Now(),
	}
	if err := hs.CreateHook(ctx, ns, r, 0); err != nil {
		t.Fatal(err)
	}
	if r.ID != 1 || r.NamespaceID != ns.ID {
		t.Fatalf("created %+v", r)
	}
	v1, _ := hs.HooksVersion(ctx)
	got, err := hs.GetHook(ctx, ns, r.ID)
	if err != nil || got.Token != "TOKEN-PLAINTEXT" || got.URLVariables["path"] != "VAR-PLAINTEXT" || got.CustomHeaders["X-A"] != "HDR-PLAINTEXT" {
		t.Fatalf("GetHook = %+v, %v", got, err)
	}
	// Every Redis value: no plaintext secret.
	keys, _ := s.Client().Keys(ctx, "*").Result()
	for _, k := range keys {
		var dump string
		switch s.Client().Type(ctx, k).Val() {
		case "hash":
			dump = fmt.Sprint(s.Client().HGetAll(ctx, k).Val())
		case "string":
			dump = s.Client().Get(ctx, k).Val()
		case "set":
			dump = fmt.Sprint(s.Client().SMembers(ctx, k).Val())
		}
		if strings.Contains(dump, "PLAINTEXT") {
			t.Fatalf("key %s holds a plaintext secret: %s", k, dump)
		}
	}
	// Other owner: not found.
	other, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/other")
	if _, err := hs.GetHook(ctx, other, r.ID); !errors.Is(err, ErrHookNotFound) {
		t.Fatalf("hook visible from another project: %v", err)
	}
	if err := hs.DeleteHook(ctx, other, r.ID); !errors.Is(err, ErrHookNotFound) {
		t.Fatalf("hook deletable from another project: %v", err)
	}
	// Update bumps the version.
	up, err := hs.UpdateHook(ctx, ns, r.ID, func(h *webhook.HookRecord) error { h.Name = "renamed"; return nil })
	if err != nil || up.Name != "renamed" || up.Token != "TOKEN-PLAINTEXT" {
		t.Fatalf("UpdateHook = %+v, %v", up, err)
	}
	if v2, _ := hs.HooksVersion(ctx); v2 <= v1 {
		t.Fatalf("version %d after update, was %d", v2, v1)
	}
	list, err := hs.ListHooks(ctx, ns)
	if err != nil || len(list) != 1 || list[0].Name != "renamed" {
		t.Fatalf("ListHooks = %v, %v", list, err)
	}
	all, ver, err := hs.LoadHooks(ctx)
	if err != nil || len(all) != 1 || ver < 2 {
		t.Fatalf("LoadHooks = %d hooks at %d, %v", len(all), ver, err)
	}
	// Another key cannot open them; no key cannot either.
	key := make([]byte, secret.KeySize)
	other2, _ := secret.New(key)
	if _, _, err := s.Hooks(other2).LoadHooks(ctx); !errors.Is(err, secret.ErrDecrypt) {
		t.Fatalf("LoadHooks with another key: %v", err)
	}
	if _, _, err := s.Hooks(nil).LoadHooks(ctx); !errors.Is(err, secret.ErrNoKey) {
		t.Fatalf("LoadHooks without a key: %v", err)
	}
	if err := s.Hooks(nil).CreateHook(ctx, ns, &webhook.HookRecord{URL: "https://x/", Token: "t"}, 0); !errors.Is(err, secret.ErrNoKey) {
		t.Fatalf("CreateHook with a secret and no key: %v", err)
	}
	if err := hs.DeleteHook(ctx, ns, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := hs.DeleteHook(ctx, ns, r.ID); !errors.Is(err, ErrHookNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := hs.ListHooks(ctx, ns); len(list) != 0 {
		t.Fatalf("hooks left after delete: %v", list)
	}
}

func TestHookLimitIsAtomic(t *testing.T) {
	hs, _, _ := newHookStore(t)
	ctx := context.Background()
	ns, _ := hs.NamespaceByPath(ctx, webhook.KindGroup, "acme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, limited := 0, 0
	for range 20 {
		wg.Go(func() {
			err := hs.CreateHook(ctx, ns, &webhook.HookRecord{URL: "https://example.com/"}, 5)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, ErrHookLimit):
				limited++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if created != 5 || limited != 15 {
		t.Fatalf("created %d, limited %d; want 5 and 15", created, limited)
	}
}

func TestConcurrentUpdatesAreNotLost(t *testing.T) {
	hs, _, _ := newHookStore(t)
	ctx := context.Background()
	ns, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	r := &webhook.HookRecord{URL: "https://example.com/"}
	if err := hs.CreateHook(ctx, ns, r, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := hs.UpdateHook(ctx, ns, r.ID, func(h *webhook.HookRecord) error {
				if h.CustomHeaders == nil {
					h.CustomHeaders = map[string]string{}
				}
				h.CustomHeaders[fmt.Sprintf("X-H%d", i)] = "v"
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := hs.GetHook(ctx, ns, r.ID)
	if len(got.CustomHeaders) != 8 {
		t.Fatalf("%d headers after 8 concurrent merges: %v", len(got.CustomHeaders), got.CustomHeaders)
	}
}

// GitLab encrypts the whole hook URL; the store keeps only the masked form
// readable. Hooks stored before, with the URL in clear, still load.
func TestHookURLSealedAtRest(t *testing.T) {
	hs, s, _ := newHookStore(t)
	ctx := context.Background()
	ns, _ := hs.NamespaceByPath(ctx, webhook.KindProject, "acme/api")
	const full = "https://alice:USERINFO-PLAINTEXT@example.com/x?apikey=QUERY-PLAINTEXT&team=ops"
	r := &webhook.HookRecord{URL: full, Triggers: []string{"push"}, CreatedAt: time.Now()}
	if err := hs.CreateHook(ctx, ns, r, 0); err != nil {
		t.Fatal(err)
	}
	raw := s.Client().HGet(ctx, s.c.keys.Hooks(), "1").Val()
	if strings.Contains(raw, "PLAINTEXT") || strings.Contains(raw, "alice") || strings.Contains(raw, "=ops") {
		t.Fatalf("stored hook holds a secret part of its URL: %s", raw)
	}
	if !strings.Contains(raw, `"url":"https://*****:*****@example.com/x?apikey=*****\u0026team=*****"`) {
		t.Fatalf("stored hook lacks the masked URL: %s", raw)
	}
	if got, err := hs.GetHook(ctx, ns, r.ID); err != nil || got.URL != full {
		t.Fatalf("GetHook URL = %q, %v", got.URL, err)
	}
	// Without a key, a URL with a part to hide cannot be stored; one
	// without can.
	if err := s.Hooks(nil).CreateHook(ctx, ns, &webhook.HookRecord{URL: full}, 0); !errors.Is(err, secret.ErrNoKey) {
		t.Fatalf("CreateHook of a URL with user info and no key: %v", err)
	}
	plain := &webhook.HookRecord{URL: "https://example.com/plain"}
	if err := s.Hooks(nil).CreateHook(ctx, ns, plain, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Hooks(nil).GetHook(ctx, ns, plain.ID); err != nil || got.URL != plain.URL {
		t.Fatalf("keyless GetHook = %+v, %v", got, err)
	}
	// A hook stored by an earlier version: URL in clear, no url_sealed.
	old := `{"kind":"project","path":"acme/api","namespace_id":1,"url":"https://bob:pw@example.com/old?k=v",` +
		`"enable_ssl_verification":true,"created_at":"2026-01-01T00:00:00Z"}`
	s.Client().HSet(ctx, s.c.keys.Hooks(), "9", old)
	s.Client().SAdd(ctx, s.c.keys.HookScope(webhook.KindProject, "acme/api"), "9")
	got, err := hs.GetHook(ctx, ns, 9)
	if err != nil || got.URL != "https://bob:pw@example.com/old?k=v" {
		t.Fatalf("old hook = %+v, %v", got, err)
	}
	// Its next save seals it.
	if _, err := hs.UpdateHook(ctx, ns, 9, func(h *webhook.HookRecord) error { h.Name = "n"; return nil }); err != nil {
		t.Fatal(err)
	}
	if raw := s.Client().HGet(ctx, s.c.keys.Hooks(), "9").Val(); strings.Contains(raw, "pw@") || !strings.Contains(raw, "url_sealed") {
		t.Fatalf("old hook not sealed on save: %s", raw)
	}
	if all, _, err := hs.LoadHooks(ctx); err != nil || len(all) != 3 {
		t.Fatalf("LoadHooks = %d hooks, %v", len(all), err)
	}
}
