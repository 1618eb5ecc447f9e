package redisstore

import (
	"context"
	"embed"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts live in lua/, one file each, named for what they do and
// headed by the KEYS and ARGV they take; shared functions are in
// lua/includes/, pulled in by a line `--- @include "name"` and resolved
// when the package loads. Every call goes through this runner: by hash
// (EVALSHA), and in full only when Redis lost its script cache (a restart,
// a failover), inside pipelines too.

//go:embed lua
var luaFiles embed.FS

// script is one script of lua/ with its includes resolved.
type script struct {
	name string
	// keys is how many KEYS the script's header names; a call with
	// another number is refused before it reaches Redis.
	keys int
	src  string
	lua  *redis.Script
}

// scripts are the loaded scripts by name, and included the includes used,
// for the test that loads each into Redis.
var (
	scripts  = map[string]*script{}
	included = map[string]bool{}
)

// The scripts, by the capability that runs them.
var (
	// queue
	addEventScript      = loadScript("add_event")
	captureScript       = loadScript("capture")
	fanOutScript        = loadScript("fan_out")
	addDeliveryScript   = loadScript("add_delivery")
	dropDeliveryScript  = loadScript("drop_delivery")
	deferDeliveryScript = loadScript("defer_delivery")
	moveDueScript       = loadScript("move_due")
	settleScript        = loadScript("settle")
	settleHealthScript  = loadScript("settle_health")
	noteShardsScript    = loadScript("note_shards")
	redriveScript       = loadScript("redrive")
	// health
	admitScript        = loadScript("admit")
	countRateScript    = loadScript("count_rate")
	recordHealthScript = loadScript("record_health")
	// log
	appendLogScript   = loadScript("append_log")
	logStatusesScript = loadScript("log_statuses")
	trimLogScript     = loadScript("trim_log")
	// hooks and integrations
	resolveNamespaceScript = loadScript("resolve_namespace")
	createHookScript       = loadScript("create_hook")
	updateHookScript       = loadScript("update_hook")
	deleteHookScript       = loadScript("delete_hook")
	putIntegrationScript   = loadScript("put_integration")
	nextIntegrationScript  = loadScript("next_integration_id")
	// idempotency
	releaseIdempotencyKeyScript = loadScript("release_idempotency_key")
	// ordered hooks
	ordAddScript    = loadScript("ord_add")
	ordTakeScript   = loadScript("ord_take")
	ordSettleScript = loadScript("ord_settle")
	ordBoundScript  = loadScript("ord_bound")
	dropOrdinScript = loadScript("drop_ordin")
	addDeadScript   = loadScript("add_dead")
	// replays
	replayLockScript = loadScript("replay_lock")
	// alerts
	alertTakeScript = loadScript("alert_take")
)

// loadScript reads lua/<name>.lua and its includes. The files are part of
// the binary, so a missing or malformed one is a build defect: it panics
// at start, and the script test finds it first.
func loadScript(name string) *script {
	src, err := resolveIncludes(name+".lua", "", map[string]bool{})
	if err != nil {
		panic(fmt.Sprintf("loading Lua script %s: %v", name, err))
	}
	n, err := headerKeys(src)
	if err != nil {
		panic(fmt.Sprintf("loading Lua script %s: %v", name, err))
	}
	s := &script{name: name, keys: n, src: src, lua: redis.NewScript(src)}
	scripts[name] = s
	return s
}

// includeLine is a line that pulls in lua/includes/<name>.lua.
var includeLine = regexp.MustCompile(`(?m)^--- @include "([a-z_]+)"\n`)

// resolveIncludes returns file with each include replaced by the
// include's text (its own includes first), each include once: a function
// already in the script is not defined again.
func resolveIncludes(file, from string, done map[string]bool) (string, error) {
	b, err := luaFiles.ReadFile(path.Join("lua", file))
	if err != nil {
		if from != "" {
			return "", fmt.Errorf("include %q of %s: %w", strings.TrimSuffix(path.Base(file), ".lua"), from, err)
		}
		return "", err
	}
	var out strings.Builder
	rest := string(b)
	for {
		loc := includeLine.FindStringSubmatchIndex(rest)
		if loc == nil {
			out.WriteString(rest)
			return out.String(), nil
		}
		out.WriteString(rest[:loc[0]])
		inc := rest[loc[2]:loc[3]]
		rest = rest[loc[1]:]
		if done[inc] {
			continue
		}
		done[inc] = true
		included[inc] = true
		text, err := resolveIncludes(path.Join("includes", inc+".lua"), file, done)
		if err != nil {
			return "", err
		}
		out.WriteString(text)
	}
}

// headerKeys counts the keys a script's header line `-- KEYS: a, b, c`
// names.
func headerKeys(src string) (int, error) {
	for line := range strings.Lines(src) {
		if keys, ok := strings.CutPrefix(line, "-- KEYS:"); ok {
			return len(strings.Split(keys, ",")), nil
		}
	}
	return 0, fmt.Errorf("no `-- KEYS:` line in its header")
}

// queue adds a call of s to p: by hash, or in full when eval is set. A
// call with the wrong number of keys gets an error and is not sent.
func (s *script) queue(ctx context.Context, p redis.Pipeliner, eval bool, keys []string, args ...any) *redis.Cmd {
	if len(keys) != s.keys {
		c := redis.NewCmd(ctx)
		c.SetErr(fmt.Errorf("script %s takes %d keys, got %d", s.name, s.keys, len(keys)))
		return c
	}
	if eval {
		return s.lua.Eval(ctx, p, keys, args...)
	}
	return s.lua.EvalSha(ctx, p, keys, args...)
}

// run calls s alone, through the same path as pipelines.
func (s *script) run(ctx context.Context, c redis.UniversalClient, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	runPipeline(ctx, c, 1, func(p redis.Pipeliner, eval bool, _ int) {
		cmd = s.queue(ctx, p, eval, keys, args...)
	}, nil)
	return cmd
}

// runScripts runs n script calls in one pipeline and returns them; the
// error is the first any call met.
func runScripts(ctx context.Context, c redis.UniversalClient, n int,
	queue func(p redis.Pipeliner, eval bool, i int) *redis.Cmd) ([]*redis.Cmd, error) {
	if n == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, n)
	runPipeline(ctx, c, n, func(p redis.Pipeliner, eval bool, i int) {
		cmds[i] = queue(p, eval, i)
	}, nil)
	for _, c := range cmds {
		if c != nil && c.Err() != nil {
			return cmds, c.Err()
		}
	}
	return cmds, nil
}

// pipelineRun is what runPipeline sent for each call: the commands it
// queued (last time), and the tail command of their pipeline.
type pipelineRun struct {
	cmds [][]redis.Cmder
	tail []redis.Cmder
}

// runPipeline sends n calls in one pipeline, each queuing its commands,
// scripts by hash. The calls that met a script Redis did not have are
// queued again, scripts in full, in a second pipeline. tail, when set, is
// queued after the calls of each pipeline, on the same connection (WAIT
// for replica acknowledgements). Errors are left on the commands: go-redis
// sets a failed pipeline's error on each of them.
func runPipeline(ctx context.Context, c redis.UniversalClient, n int, queue func(p redis.Pipeliner, eval bool, i int),
	tail func(ctx context.Context, p redis.Pipeliner) redis.Cmder) pipelineRun {
	run := pipelineRun{cmds: make([][]redis.Cmder, n), tail: make([]redis.Cmder, n)}
	send := func(eval bool, which []int) {
		p := c.Pipeline()
		starts := make([]int, len(which)+1)
		for k, i := range which {
			starts[k] = p.Len()
			queue(p, eval, i)
		}
		starts[len(which)] = p.Len()
		var t redis.Cmder
		if tail != nil && p.Len() > 0 {
			t = tail(ctx, p)
		}
		cmds, _ := p.Exec(ctx)
		for k, i := range which {
			run.cmds[i] = cmds[starts[k]:starts[k+1]:starts[k+1]]
			run.tail[i] = t
		}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	send(false, all)
	var missing []int
	for i, cmds := range run.cmds {
		if missingScript(cmds) {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		send(true, missing)
	}
	return run
}

// missingScript tells whether a script call failed because Redis did not
// have the script cached.
func missingScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}
