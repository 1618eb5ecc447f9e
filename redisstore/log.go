package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// appendLog adds an entry with an ID taken from the caller's clock (so
// retention follows the caller's notion of time), falling back to Redis's
// when another process's clock is ahead. Entry numbers (ms*1000+seq) need
// seq < 1000: a larger one moves the entry to the next millisecond. Trims by
// age and by length, and refreshes the key's expiry (a hook that stops
// receiving loses its log after the retention).
var appendLog = redis.NewScript(`
local key, minid, ms, maxlen, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local id = redis.pcall('XADD', key, 'MINID', minid, ms .. '-*', 's', ARGV[5], 'l', ARGV[6])
if type(id) == 'table' and id.err then
  id = redis.call('XADD', key, 'MINID', minid, '*', 's', ARGV[5], 'l', ARGV[6])
end
local m, seq = string.match(id, '^(%d+)%-(%d+)$')
if tonumber(seq) >= 1000 then
  redis.call('XDEL', key, id)
  id = redis.call('XADD', key, string.format('%.0f', tonumber(m) + 1) .. '-0', 's', ARGV[5], 'l', ARGV[6])
end
redis.call('XTRIM', key, 'MAXLEN', maxlen)
redis.call('PEXPIRE', key, ttl)
return id
`)

// AppendLog records an attempt in its hook's log and returns its ID.
func (s *Store) AppendLog(ctx context.Context, e *LogEntry, lim LogLimits) (int64, error) {
	args, err := s.logArgs(e, lim)
	if err != nil {
		return 0, err
	}
	cmd := appendLog.Run(ctx, s.rdb, []string{s.keys.HookLog(e.HookID)}, args...)
	return logEntryID(cmd, e.HookID)
}

// logArgs are appendLog's arguments for e.
func (s *Store) logArgs(e *LogEntry, lim LogLimits) ([]any, error) {
	b, err := encodeLogEntry(e)
	if err != nil {
		return nil, fmt.Errorf("encoding log entry of hook %d: %w", e.HookID, err)
	}
	now := e.CreatedAt.UnixMilli()
	minID := max(now-lim.Retention.Milliseconds(), 0)
	return []any{strconv.FormatInt(minID, 10), strconv.FormatInt(now, 10), lim.MaxEntries,
		lim.Retention.Milliseconds(), e.ResponseStatus, b}, nil
}

// encodeLogEntry is json.Marshal(e) without re-validating and compacting
// the request payload (valid JSON already, and the largest part): a
// placeholder is encoded in its place and the payload spliced in.
func encodeLogEntry(e *LogEntry) ([]byte, error) {
	data := e.RequestData
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	c := *e
	c.RequestData = json.RawMessage("0")
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	// A string cannot hold this unescaped, so it is the member itself.
	const placeholder = `"req_data":0`
	i := bytes.Index(b, []byte(placeholder)) + len(placeholder) - 1
	if i < len(placeholder)-1 {
		return nil, errors.New("request data placeholder not found")
	}
	out := make([]byte, 0, len(b)+len(data))
	out = append(append(append(out, b[:i]...), data...), b[i+1:]...)
	return out, nil
}

// logEntryID reads appendLog's reply: the new entry's ID.
func logEntryID(cmd *redis.Cmd, hookID int64) (int64, error) {
	id, err := cmd.Text()
	if err != nil {
		return 0, fmt.Errorf("appending to the log of hook %d: %w", hookID, err)
	}
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

// LogRefs lists the IDs and statuses of a hook's entries created at or
// after since, newest first.
func (s *Store) LogRefs(ctx context.Context, hookID int64, since time.Time) ([]LogRef, error) {
	v, err := logStatuses.Run(ctx, s.rdb, []string{s.keys.HookLog(hookID)},
		strconv.FormatInt(max(since.UnixMilli(), 0), 10)).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("listing the log of hook %d: %w", hookID, err)
	}
	out := make([]LogRef, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		if n, ok := logNumber(v[i]); ok {
			out = append(out, LogRef{ID: n, Status: v[i+1]})
		}
	}
	return out, nil
}

// LogEntries reads entries by ID, in the order given; missing ones
// (trimmed meanwhile) are left out.
func (s *Store) LogEntries(ctx context.Context, hookID int64, ids ...int64) ([]LogEntry, error) {
	key := s.keys.HookLog(hookID)
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			sid := logStreamID(id)
			cmds[i] = p.XRange(ctx, key, sid, sid)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("reading the log of hook %d: %w", hookID, err)
	}
	out := make([]LogEntry, 0, len(ids))
	for i, c := range cmds {
		msgs := c.Val()
		if len(msgs) != 1 {
			continue
		}
		raw, _ := msgs[0].Values["l"].(string)
		var e LogEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("decoding log entry %d of hook %d: %w", ids[i], hookID, err)
		}
		e.ID = ids[i]
		out = append(out, e)
	}
	return out, nil
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
