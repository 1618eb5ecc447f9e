package redisstore

import (
	"context"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// TestEveryScriptLoads loads every script of lua/, includes resolved, into
// a real Redis (SCRIPT LOAD compiles it), so that a syntax error fails
// here, not in production; and checks that each file is a script the store
// runs, and each include is used.
func TestEveryScriptLoads(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "scripts"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	files, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in lua/")
	}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".lua")
		sc, ok := scripts[name]
		if !ok {
			t.Errorf("%s is not loaded by the store: a script nothing runs", f)
			continue
		}
		sha, err := s.c.rdb.ScriptLoad(ctx, sc.src).Result()
		if err != nil {
			t.Errorf("SCRIPT LOAD %s: %v", name, err)
		} else if sha != sc.lua.Hash() {
			t.Errorf("SCRIPT LOAD %s: hash %s, the runner calls %s", name, sha, sc.lua.Hash())
		}
	}
	if len(scripts) != len(files) {
		t.Errorf("%d scripts loaded from %d files", len(scripts), len(files))
	}
	incs, err := fs.Glob(luaFiles, "lua/includes/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range incs {
		name := strings.TrimSuffix(path.Base(f), ".lua")
		if !included[name] {
			t.Errorf("include %s is in no script", name)
		}
	}
}

// TestScriptCallWithWrongKeys: a call with another number of keys than
// its script's header names is refused before it reaches Redis, naming
// the script.
func TestScriptCallWithWrongKeys(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	before := writes(t, s.c.rdb)
	err := moveDueScript.run(ctx, s.c.rdb, []string{s.c.keys.Schedule(0)}, 0, 10).Err()
	if err == nil || !strings.Contains(err.Error(), "move_due takes 2 keys, got 1") {
		t.Errorf("call with 1 key of 2: %v", err)
	}
	if n := writes(t, s.c.rdb) - before - 1; n != 0 {
		t.Errorf("the refused call reached Redis (%d writes)", n)
	}
}
