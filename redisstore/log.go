package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Log is the hooks' delivery logs ("Recent events"): each hook's log is a
// stream per shard, entries numbered so that a number names its shard.
// Attempts of queued deliveries are appended by Queue.Settle, in the same
// script; tests and resends by Append.
type Log struct{ *conn }

// LogLimits bound a hook's log: entries older than Retention are trimmed,
// and at most MaxEntries are kept.
type LogLimits struct {
	Retention  time.Duration
	MaxEntries int
}

// manualLogShard is the shard whose part of a hook's log holds the
// entries written outside the queue.
const manualLogShard = 0

// Append records an attempt made outside the queue in its hook's log
// and returns its ID. Its payload is stored with it.
func (l *Log) Append(ctx context.Context, e *webhook.LogEntry, lim LogLimits) (int64, error) {
	f, err := logArgs(e, nil)
	if err != nil {
		return 0, err
	}
	sh := manualLogShard
	keys := []string{l.keys.HookLog(sh, e.HookID), l.keys.LogTails(sh), l.keys.Refs(sh)}
	v, err := appendLogScript.run(ctx, l.rdb, keys, e.HookID, sh, f.ms, lim.MaxEntries, e.ResponseStatus,
		f.entry, l.keys.PayloadPrefix(sh)).Result()
	if err != nil {
		return 0, fmt.Errorf("appending to the log of hook %d: %w", e.HookID, err)
	}
	return logEntryNumber(v, e.HookID)
}

// logFields are what lua/includes/log.lua's logappend takes of an entry:
// the entry's time, its document and the event whose payload it refers to
// (empty for none). An attempt that sent the delivery's shared payload
// unchanged (no template, nothing redacted, not oversize) refers to it
// instead of holding a copy.
type logFields struct {
	ms, ref string
	entry   []byte
}

// logArgs are the logFields of e, an attempt of d (nil: made outside the
// queue).
func logArgs(e *webhook.LogEntry, d *webhook.Delivery) (logFields, error) {
	ref := ""
	c := e
	if d != nil && d.Shared && !e.Oversize && !e.Rendered && sameBytes(e.RequestData, d.Body) {
		cp := *e
		cp.RequestData = nil
		c, ref = &cp, d.EventID
	}
	b, err := encodeLogEntry(c)
	if err != nil {
		return logFields{}, fmt.Errorf("encoding log entry of hook %d: %w", e.HookID, err)
	}
	return logFields{ms: strconv.FormatInt(e.CreatedAt.UnixMilli(), 10), entry: b, ref: ref}, nil
}

// logKeys are the keys of a hook's log: its part in each shard, and the
// log of the layout before shards, read until it expires.
func (l *Log) logKeys(hookID int64) []string {
	n := l.readShards()
	keys := make([]string, 0, n+1)
	for i := range n {
		keys = append(keys, l.keys.HookLog(i, hookID))
	}
	return append(keys, l.keys.legacyHookLog(hookID))
}

// Refs lists the IDs and statuses of a hook's entries created at or
// after since, newest first.
func (l *Log) Refs(ctx context.Context, hookID int64, since time.Time) ([]webhook.LogRef, error) {
	keys := l.logKeys(hookID)
	from := strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	cmds, err := runScripts(ctx, l.rdb, len(keys), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return logStatusesScript.queue(ctx, p, eval, []string{keys[i]}, from)
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing the log of hook %d: %w", hookID, err)
	}
	var out []webhook.LogRef
	seen := map[int64]bool{}
	for _, c := range cmds {
		v, _ := c.StringSlice()
		for i := 0; i+1 < len(v); i += 2 {
			if n, ok := logNumber(v[i]); ok && !seen[n] {
				seen[n] = true
				out = append(out, webhook.LogRef{ID: n, Status: v[i+1]})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID > out[b].ID })
	return out, nil
}

// Entries reads entries by ID, in the order given; missing ones
// (trimmed meanwhile) are left out. An entry's shard is in its number; an
// entry of the shared payload gets it from its shard.
func (l *Log) Entries(ctx context.Context, hookID int64, ids ...int64) ([]webhook.LogEntry, error) {
	type found struct {
		shard       int
		sharded, v1 *redis.XMessageSliceCmd
	}
	cmds := make([]found, len(ids))
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			sid := logStreamID(id)
			cmds[i].shard = int(id%1000) % MaxShards
			cmds[i].sharded = p.XRange(ctx, l.keys.HookLog(cmds[i].shard, hookID), sid, sid)
			cmds[i].v1 = p.XRange(ctx, l.keys.legacyHookLog(hookID), sid, sid)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading the log of hook %d: %w", hookID, err)
	}
	out := make([]webhook.LogEntry, 0, len(ids))
	var refs []int // entries of out that refer to a payload
	var payloads []*redis.StringCmd
	for i, c := range cmds {
		msgs := c.sharded.Val()
		if len(msgs) != 1 {
			if msgs = c.v1.Val(); len(msgs) != 1 {
				continue
			}
		}
		v := fields(msgs[0].Values)
		var e webhook.LogEntry
		if err := json.Unmarshal([]byte(v.str("l")), &e); err != nil {
			return nil, fmt.Errorf("decoding log entry %d of hook %d: %w", ids[i], hookID, err)
		}
		e.ID = ids[i]
		if ev := v.str("p"); ev != "" {
			refs = append(refs, len(out))
			payloads = append(payloads, redis.NewStringCmd(ctx, "GET", l.keys.Payload(c.shard, ev)))
		}
		out = append(out, e)
	}
	if len(payloads) > 0 {
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range payloads {
				_ = p.Process(ctx, c)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("reading the payloads of the log of hook %d: %w", hookID, err)
		}
		for k, i := range refs {
			if b, err := payloads[k].Bytes(); err == nil {
				out[i].RequestData = b
			}
		}
	}
	return out, nil
}

// logsOf lists the hooks with a log in shard i: those its tails name, and
// those of the set kept before the tails.
func (l *Log) logsOf(ctx context.Context, i int) ([]string, error) {
	var tails *redis.StringSliceCmd
	var old *redis.StringSliceCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		tails, old = p.HKeys(ctx, l.keys.LogTails(i)), p.SMembers(ctx, l.keys.Logs(i))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing the logs of shard %d: %w", i, err)
	}
	hooks := old.Val()
	seen := make(map[string]bool, len(hooks))
	for _, h := range hooks {
		seen[h] = true
	}
	for _, f := range tails.Val() {
		if !strings.HasSuffix(f, ":r") && !seen[f] {
			hooks = append(hooks, f)
		}
	}
	return hooks, nil
}

// Trim trims every hook's log in every shard to lim as of now: logs
// are trimmed as they grow, and this catches those that stopped growing,
// so their entries (and the payloads they hold) go after the retention.
// It returns how many entries went.
func (l *Log) Trim(ctx context.Context, lim LogLimits, now time.Time) (int, error) {
	minID := strconv.FormatInt(max(now.Add(-lim.Retention).UnixMilli(), 0), 10)
	total := 0
	for i := range l.readShards() {
		hooks, err := l.logsOf(ctx, i)
		if err != nil {
			return total, err
		}
		cmds, err := runScripts(ctx, l.rdb, len(hooks), func(p redis.Pipeliner, eval bool, k int) *redis.Cmd {
			id, _ := strconv.ParseInt(hooks[k], 10, 64)
			return trimLogScript.queue(ctx, p, eval,
				[]string{l.keys.HookLog(i, id), l.keys.LogTails(i), l.keys.Refs(i), l.keys.Logs(i)},
				hooks[k], minID, lim.MaxEntries, l.keys.PayloadPrefix(i))
		})
		if err != nil {
			return total, fmt.Errorf("trimming the logs of shard %d: %w", i, err)
		}
		for _, c := range cmds {
			n, _ := c.Int64()
			total += int(n)
		}
	}
	return total, nil
}
