package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// LogEntry is one delivery attempt in a hook's log, as GitLab's WebHookLog:
// what was sent (secrets already redacted by the caller) and what came back.
type LogEntry struct {
	// ID is the entry's number, unique per hook and increasing with time
	// (stream entry "<ms>-<seq>" as ms*1000+seq). Set when read.
	ID int64 `json:"-"`
	// HookID is the hook the attempt went to.
	HookID int64 `json:"hook"`
	// EventID is the event's UUID; with HookID it gives the Idempotency-Key.
	EventID string `json:"event"`
	// Chain is the X-Gitlab-Event-UUID that was sent.
	Chain string `json:"chain,omitempty"`
	// Trigger is the gitlab.Trigger ("push").
	Trigger string `json:"trigger"`
	// Kind is "delivery", "test" or "resend".
	Kind string `json:"kind"`
	// URL is the hook's masked URL template.
	URL string `json:"url"`
	// RequestHeaders are the headers sent, secrets replaced by [REDACTED].
	RequestHeaders map[string]string `json:"req_headers"`
	// RequestData is the payload sent, or {"oversize":true} (Oversize) when
	// it was larger than the log keeps.
	RequestData json.RawMessage `json:"req_data"`
	Oversize    bool            `json:"oversize,omitempty"`
	// Rendered says RequestData is the hook's custom webhook template
	// rendered, not the event's payload: a resend sends it as it is.
	Rendered bool `json:"rendered,omitempty"`
	// ResponseHeaders and ResponseBody are the receiver's, capped.
	ResponseHeaders map[string]string `json:"resp_headers"`
	ResponseBody    string            `json:"resp_body"`
	// ResponseStatus is the HTTP status as a string, or "internal error"
	// when there was no response.
	ResponseStatus string `json:"status"`
	// Duration is the request's execution time in seconds.
	Duration float64 `json:"duration"`
	// InternalError says why an attempt without a response failed.
	InternalError string `json:"error,omitempty"`
	// CreatedAt is when the attempt finished.
	CreatedAt time.Time `json:"at"`
}

// LogLimits bound a hook's log: entries older than Retention are trimmed,
// and at most MaxEntries are kept.
type LogLimits struct {
	Retention  time.Duration
	MaxEntries int
}

// appendLogScript adds an entry written outside the queue (a test, a
// resend): its payload is its own.
var appendLogScript = redis.NewScript(refsLua + logLua + `
-- KEYS: log, logs, refs; ARGV: hook id, shard, min id, ms, max entries, status, entry, payload prefix
return logappend(KEYS[1], KEYS[2], KEYS[3], ARGV[8], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], '', false)
`)

// manualLogShard is the shard whose part of a hook's log holds the
// entries written outside the queue.
const manualLogShard = 0

// AppendLog records an attempt made outside the queue in its hook's log
// and returns its ID. Its payload is stored with it.
func (s *Store) AppendLog(ctx context.Context, e *LogEntry, lim LogLimits) (int64, error) {
	args, err := s.logArgs(e, lim, nil)
	if err != nil {
		return 0, err
	}
	sh := manualLogShard
	keys := []string{s.keys.HookLog(sh, e.HookID), s.keys.Logs(sh), s.keys.Refs(sh)}
	v, err := appendLogScript.Run(ctx, s.rdb, keys, e.HookID, sh, args[0], args[1], args[2], args[3], args[4],
		s.keys.PayloadPrefix(sh)).Result()
	if err != nil {
		return 0, fmt.Errorf("appending to the log of hook %d: %w", e.HookID, err)
	}
	return logEntryNumber(v, e.HookID)
}

// logArgs are logLua's arguments for e: min id, ms, max entries, status,
// entry and the event whose payload it refers to. An attempt that sent the
// delivery's shared payload unchanged (no template, nothing redacted, not
// oversize) refers to it instead of holding a copy.
func (s *Store) logArgs(e *LogEntry, lim LogLimits, d *webhook.Delivery) ([]any, error) {
	ref := ""
	c := e
	if d != nil && d.Shared && !e.Oversize && !e.Rendered && sameBytes(e.RequestData, d.Body) {
		cp := *e
		cp.RequestData = nil
		c, ref = &cp, d.EventID
	}
	b, err := encodeLogEntry(c)
	if err != nil {
		return nil, fmt.Errorf("encoding log entry of hook %d: %w", e.HookID, err)
	}
	now := e.CreatedAt.UnixMilli()
	minID := max(now-lim.Retention.Milliseconds(), 0)
	return []any{strconv.FormatInt(minID, 10), strconv.FormatInt(now, 10), lim.MaxEntries,
		e.ResponseStatus, b, ref}, nil
}

// sameBytes tells whether a and b hold the same bytes, at once when they
// are the same slice (a payload the redaction left untouched).
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return bytes.Equal(a, b)
}

// encodeLogEntry is json.Marshal(e), written by hand: encoding/json would
// re-validate and compact the request payload (valid JSON already, and
// the largest part) and reach every field and header through reflection.
// The payload is kept as it is; everything else is byte for byte what
// json.Marshal writes (TestEncodeLogEntry).
func encodeLogEntry(e *LogEntry) ([]byte, error) {
	if math.IsInf(e.Duration, 0) || math.IsNaN(e.Duration) {
		return nil, fmt.Errorf("log entry duration %v is not a JSON number", e.Duration)
	}
	if y := e.CreatedAt.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("log entry time %v is outside of years 0-9999", e.CreatedAt)
	}
	size := 256 + len(e.EventID) + len(e.Chain) + len(e.URL) + len(e.RequestData) + len(e.ResponseBody) + len(e.InternalError)
	for _, m := range []map[string]string{e.RequestHeaders, e.ResponseHeaders} {
		for k, v := range m {
			size += len(k) + len(v) + 6
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"hook":`...)
	b = strconv.AppendInt(b, e.HookID, 10)
	b = append(b, `,"event":`...)
	b = appendJSONText(b, e.EventID)
	if e.Chain != "" {
		b = append(b, `,"chain":`...)
		b = appendJSONText(b, e.Chain)
	}
	b = append(b, `,"trigger":`...)
	b = appendJSONText(b, e.Trigger)
	b = append(b, `,"kind":`...)
	b = appendJSONText(b, e.Kind)
	b = append(b, `,"url":`...)
	b = appendJSONText(b, e.URL)
	b = append(b, `,"req_headers":`...)
	b = appendStringMap(b, e.RequestHeaders)
	b = append(b, `,"req_data":`...)
	if len(e.RequestData) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.RequestData...)
	}
	if e.Oversize {
		b = append(b, `,"oversize":true`...)
	}
	if e.Rendered {
		b = append(b, `,"rendered":true`...)
	}
	b = append(b, `,"resp_headers":`...)
	b = appendStringMap(b, e.ResponseHeaders)
	b = append(b, `,"resp_body":`...)
	b = appendJSONText(b, e.ResponseBody)
	b = append(b, `,"status":`...)
	b = appendJSONText(b, e.ResponseStatus)
	b = append(b, `,"duration":`...)
	b = appendJSONFloat(b, e.Duration)
	if e.InternalError != "" {
		b = append(b, `,"error":`...)
		b = appendJSONText(b, e.InternalError)
	}
	b = append(b, `,"at":"`...)
	b = e.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}

// appendJSONText appends s as encoding/json writes a string: a string of
// plain printable ASCII as it is, anything else (escapes, HTML characters,
// UTF-8 to check) through encoding/json.
func appendJSONText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringMap appends m as encoding/json writes it: keys sorted, nil
// as null.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONText(b, k)
		b = append(b, ':')
		b = appendJSONText(b, m[k])
	}
	return append(b, '}')
}

// appendJSONFloat appends f as encoding/json writes a float64 (finite).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// logEntryNumber reads a log append's reply: the new entry's stream ID.
func logEntryNumber(v any, hookID int64) (int64, error) {
	id, _ := v.(string)
	n, ok := logNumber(id)
	if !ok {
		return 0, fmt.Errorf("appending to the log of hook %d: unexpected entry id %q", hookID, id)
	}
	return n, nil
}

// logNumber turns a stream ID "<ms>-<seq>" into an entry number.
func logNumber(streamID string) (int64, bool) {
	ms, seq, ok := strings.Cut(streamID, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	q, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || q >= 1000 || m < 0 || m > (1<<62)/1000 {
		return 0, false
	}
	return m*1000 + q, true
}

// logStreamID is logNumber's inverse.
func logStreamID(n int64) string {
	return strconv.FormatInt(n/1000, 10) + "-" + strconv.FormatInt(n%1000, 10)
}

// logStatuses returns every entry's ID and status, newest first, without
// moving the entries' bodies out of Redis.
var logStatuses = redis.NewScript(`
local r = redis.call('XREVRANGE', KEYS[1], '+', ARGV[1])
local out = {}
for _, e in ipairs(r) do
  local f, s = e[2], ''
  for j = 1, #f, 2 do if f[j] == 's' then s = f[j + 1] end end
  out[#out + 1] = e[1]
  out[#out + 1] = s
end
return out
`)

// LogRef is an entry's ID and response status.
type LogRef struct {
	ID     int64
	Status string
}

// logKeys are the keys of a hook's log: its part in each shard, and the
// log of the layout before shards, read until it expires.
func (s *Store) logKeys(hookID int64) []string {
	n := s.readShards()
	keys := make([]string, 0, n+1)
	for i := range n {
		keys = append(keys, s.keys.HookLog(i, hookID))
	}
	return append(keys, s.keys.legacyHookLog(hookID))
}

// LogRefs lists the IDs and statuses of a hook's entries created at or
// after since, newest first.
func (s *Store) LogRefs(ctx context.Context, hookID int64, since time.Time) ([]LogRef, error) {
	keys := s.logKeys(hookID)
	from := strconv.FormatInt(max(since.UnixMilli(), 0), 10)
	cmds, err := s.scripts(ctx, len(keys), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return runScript(ctx, p, logStatuses, eval, []string{keys[i]}, from)
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing the log of hook %d: %w", hookID, err)
	}
	var out []LogRef
	seen := map[int64]bool{}
	for _, c := range cmds {
		v, _ := c.StringSlice()
		for i := 0; i+1 < len(v); i += 2 {
			if n, ok := logNumber(v[i]); ok && !seen[n] {
				seen[n] = true
				out = append(out, LogRef{ID: n, Status: v[i+1]})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID > out[b].ID })
	return out, nil
}

// LogEntries reads entries by ID, in the order given; missing ones
// (trimmed meanwhile) are left out. An entry's shard is in its number; an
// entry of the shared payload gets it from its shard.
func (s *Store) LogEntries(ctx context.Context, hookID int64, ids ...int64) ([]LogEntry, error) {
	type found struct {
		shard       int
		sharded, v1 *redis.XMessageSliceCmd
	}
	cmds := make([]found, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			sid := logStreamID(id)
			cmds[i].shard = int(id%1000) % MaxShards
			cmds[i].sharded = p.XRange(ctx, s.keys.HookLog(cmds[i].shard, hookID), sid, sid)
			cmds[i].v1 = p.XRange(ctx, s.keys.legacyHookLog(hookID), sid, sid)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading the log of hook %d: %w", hookID, err)
	}
	out := make([]LogEntry, 0, len(ids))
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
		var e LogEntry
		if err := json.Unmarshal([]byte(v.str("l")), &e); err != nil {
			return nil, fmt.Errorf("decoding log entry %d of hook %d: %w", ids[i], hookID, err)
		}
		e.ID = ids[i]
		if ev := v.str("p"); ev != "" {
			refs = append(refs, len(out))
			payloads = append(payloads, redis.NewStringCmd(ctx, "GET", s.keys.Payload(c.shard, ev)))
		}
		out = append(out, e)
	}
	if len(payloads) > 0 {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
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

// trimLogScript trims a hook's log in one shard by age and length,
// releasing the payloads of the entries dropped; an emptied log goes.
var trimLogScript = redis.NewScript(refsLua + logLua + `
-- KEYS: log, logs, refs; ARGV: hook id, min id, max entries, payload prefix
local n = logtrim(KEYS[1], KEYS[3], ARGV[4], ARGV[2], tonumber(ARGV[3]))
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
end
return n
`)

// TrimLogs trims every hook's log in every shard to lim as of now: logs
// are trimmed as they grow, and this catches those that stopped growing,
// so their entries (and the payloads they hold) go after the retention.
// It returns how many entries went.
func (s *Store) TrimLogs(ctx context.Context, lim LogLimits, now time.Time) (int, error) {
	minID := strconv.FormatInt(max(now.Add(-lim.Retention).UnixMilli(), 0), 10)
	total := 0
	for i := range s.readShards() {
		hooks, err := s.rdb.SMembers(ctx, s.keys.Logs(i)).Result()
		if err != nil {
			return total, fmt.Errorf("listing the logs of shard %d: %w", i, err)
		}
		cmds, err := s.scripts(ctx, len(hooks), func(p redis.Pipeliner, eval bool, k int) *redis.Cmd {
			id, _ := strconv.ParseInt(hooks[k], 10, 64)
			return runScript(ctx, p, trimLogScript, eval, []string{s.keys.HookLog(i, id), s.keys.Logs(i), s.keys.Refs(i)},
				hooks[k], minID, lim.MaxEntries, s.keys.PayloadPrefix(i))
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

// SetLatestEvents remembers several events at once (one round trip), each
// as the latest of its project and trigger.
func (s *Store) SetLatestEvents(ctx context.Context, evs []*webhook.Event, ttl time.Duration) error {
	if len(evs) == 0 {
		return nil
	}
	// Only the last of a batch's events per key survives: set only that one.
	last := make(map[string]*webhook.Event, len(evs))
	var order []string
	for _, e := range evs {
		k := s.keys.LatestEvent(e.Project, e.Trigger)
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = e
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range order {
			p.Set(ctx, k, last[k].Body, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remembering the latest events: %w", err)
	}
	return nil
}

// LatestEvent returns the payload remembered by SetLatestEvent, or nil.
func (s *Store) LatestEvent(ctx context.Context, project, trigger string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.LatestEvent(project, trigger)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the latest %s event of %s: %w", trigger, project, err)
	}
	return b, nil
}

// Throttle counts one call of action by scope in the current fixed window
// and reports whether it is within limit; if not, retryAfter is the time
// left in the window. Every process sharing the Redis shares the count.
func (s *Store) Throttle(ctx context.Context, action, scope string, limit int, window time.Duration, now time.Time) (ok bool, retryAfter time.Duration, err error) {
	w := now.UnixMilli() / window.Milliseconds()
	key := s.keys.Throttle(action, scope, w)
	var incr *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.PExpire(ctx, key, window)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("counting %s calls: %w", action, err)
	}
	if incr.Val() <= int64(limit) {
		return true, 0, nil
	}
	end := time.UnixMilli((w + 1) * window.Milliseconds())
	return false, end.Sub(now), nil
}
