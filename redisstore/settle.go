package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// deadLua adds a dead letter and keeps the stream within its bounds. A
// dead letter records its size (document, reason and the shared payload
// it holds, counted whole for each holder: a bound, not an exact share)
// in its "n" field and
// in the dead-bytes counter, and the event whose payload it holds in "ev".
// The oldest are trimmed, releasing their payloads, while the stream holds
// more entries or bytes than its bounds. Entries are read one at a time
// when only the byte bound is exceeded, so no more is copied into the
// script than is dropped.
const deadLua = `
local function dead(stream, counter, refs, prefix, doc, reason, now, ev, plen, maxlen, maxbytes)
  local n = #doc + #reason + plen
  local len = redis.call('XLEN', stream)
  if len == 0 then redis.call('DEL', counter) end
  if ev ~= '' then
    redis.call('XADD', stream, '*', 'd', doc, 'reason', reason, 'at', now, 'n', n, 'ev', ev)
  else
    redis.call('XADD', stream, '*', 'd', doc, 'reason', reason, 'at', now, 'n', n)
  end
  len = len + 1
  local bytes = redis.call('INCRBY', counter, n)
  local by_count, by_bytes = 0, 0
  while len > 0 and (len > maxlen or bytes > maxbytes) do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', math.min(math.max(len - maxlen, 1), 1000))
    for _, e in ipairs(batch) do
      if len <= maxlen and bytes <= maxbytes then break end
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'n' then bytes = bytes - (tonumber(f[i + 1]) or 0) end
        if f[i] == 'ev' then addref(refs, prefix, f[i + 1], -1) end
      end
      redis.call('XDEL', stream, e[1])
      if len > maxlen then by_count = by_count + 1 else by_bytes = by_bytes + 1 end
      len = len - 1
    end
  end
  if len == 0 or bytes <= 0 then
    redis.call('DEL', counter)
  elseif by_count + by_bytes > 0 then
    redis.call('SET', counter, bytes)
  end
  return by_count, by_bytes
end
`

// logLua appends to a hook's log in one shard and trims it. An entry's ID
// is "<ms>-<k*64+shard>" (k counting up within the millisecond), so its
// number names its shard; the caller's clock gives ms, unless the stream
// is ahead. An entry of the shared payload holds a reference to it ("p");
// entries trimmed (older than minid, or beyond maxlen) release theirs. An
// entry given a reference its caller owned (owned) takes no new one.
const logLua = `
local function logtrim(key, refs, prefix, minid, maxlen)
  local n = redis.call('XLEN', key)
  if n == 0 then return 0 end
  local old = {}
  if minid ~= '0' then old = redis.call('XRANGE', key, '-', '(' .. minid, 'COUNT', 1000) end
  local total = #old
  if n - total > maxlen then total = n - maxlen end
  if total == 0 then return 0 end
  if total > #old then old = redis.call('XRANGE', key, '-', '+', 'COUNT', total) end
  for _, e in ipairs(old) do
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'p' then addref(refs, prefix, f[i + 1], -1) end
    end
  end
  redis.call('XTRIM', key, 'MAXLEN', n - total)
  return total
end
local function logappend(key, logs, refs, prefix, hook, shard, minid, ms, maxlen, status, entry, ev, owned)
  local m, k = tonumber(ms), 0
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local lm, ls = string.match(last[1][1], '^(%d+)%-(%d+)$')
    lm, ls = tonumber(lm), tonumber(ls)
    if lm > m then m = lm end
    if lm == m then k = math.floor(ls / 64) + 1 end
  end
  if k * 64 + shard >= 1000 then m, k = m + 1, 0 end
  local id = string.format('%.0f', m) .. '-' .. (k * 64 + shard)
  if ev ~= '' then
    redis.call('XADD', key, id, 's', status, 'l', entry, 'p', ev)
    if not owned then addref(refs, prefix, ev, 1) end
  else
    redis.call('XADD', key, id, 's', status, 'l', entry)
  end
  redis.call('SADD', logs, hook)
  logtrim(key, refs, prefix, minid, tonumber(maxlen))
  return id
end
`

// settleScript records the queue side of one delivery attempt atomically,
// in the delivery's shard: it acknowledges the entry, appends the attempt
// to its hook's log, and schedules the retry, dead-letters the delivery,
// or (success, or nothing more to do) releases its payload. The payload's
// reference passes from the entry to the retry or the dead letter (or
// goes, when the same retry waits already); the log entry takes its own.
// The hook's health is healthScript's, in its own
// slot.
var settleScript = redis.NewScript(refsLua + deadLua + logLua + `
-- KEYS: ready, schedule, dead, dead bytes, refs, log, logs
-- ARGV: group, entry id, now ms, next (done|retry|dead), retry due ms, retry member, dead reason,
--       delivery, event id of the shared payload (''), payload prefix, max dead letters, max dead-letter bytes,
--       log? ('1'|''), hook id, shard, log min id, log ms, log max entries, status, log entry, log payload (''),
--       payload length
-- returns: already settled (1|0), dead letters trimmed for count, for bytes, log entry id ('')
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {1, 0, 0, ''} end
redis.call('XDEL', KEYS[1], ARGV[2])
local logid = ''
-- A delivery done whose log entry refers to its payload hands its
-- reference to the entry: two count updates fewer.
local handed = ARGV[13] == '1' and ARGV[4] == 'done' and ARGV[21] ~= '' and ARGV[21] == ARGV[9]
if ARGV[13] == '1' then
  logid = logappend(KEYS[6], KEYS[7], KEYS[5], ARGV[10], ARGV[14], tonumber(ARGV[15]), ARGV[16], ARGV[17], ARGV[18],
    ARGV[19], ARGV[20], ARGV[21], handed)
end
local c, b = 0, 0
if ARGV[4] == 'retry' then
  if redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6]) == 0 then
    -- the same delivery (of an event added twice) waits already: one
    -- member holds one reference
    addref(KEYS[5], ARGV[10], ARGV[9], -1)
  end
elseif ARGV[4] == 'dead' then
  c, b = dead(KEYS[3], KEYS[4], KEYS[5], ARGV[10], ARGV[8], ARGV[7], ARGV[3], ARGV[9], tonumber(ARGV[22]),
    tonumber(ARGV[11]), tonumber(ARGV[12]))
elseif not handed then
  addref(KEYS[5], ARGV[10], ARGV[9], -1)
end
return {0, c, b, logid}
`)

// healthScript updates a hook's health after an attempt as GitLab does (a
// success resets; the threshold-th consecutive failure disables
// temporarily, 1 min doubling up to a cap; a client error at the
// threshold, or 410 Gone at once, disables until a person re-enables).
// Like GitLab, failures reported while the hook is already disabled do not
// count again.
var healthScript = redis.NewScript(`
-- KEYS: health, disabled hooks (zset: hook id -> until ms, inf = permanent)
-- ARGV: now ms, result (ok|fail), class (''|client|gone), threshold, base backoff ms, max backoff ms, status, hook id
-- returns: fails, disabled until ms, permanently disabled
local now = tonumber(ARGV[1])
if ARGV[2] == 'ok' then
  local h = redis.call('HMGET', KEYS[1], 'last_status', 'fails')
  if h[1] ~= ARGV[7] or h[2] ~= '0' then
    redis.call('HSET', KEYS[1], 'fails', 0, 'disabled_until', 0, 'last_status', ARGV[7])
    redis.call('ZREM', KEYS[2], ARGV[8])
  end
  return {0, 0, 0}
end
local h = redis.call('HMGET', KEYS[1], 'disabled', 'disabled_until', 'fails')
local permanent = (h[1] == '1') and 1 or 0
local until_ms = tonumber(h[2] or '0') or 0
local fails = tonumber(h[3] or '0') or 0
if permanent == 0 and until_ms <= now then
  fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
  redis.call('HSET', KEYS[1], 'last_fail', now, 'last_status', ARGV[7])
  local threshold = tonumber(ARGV[4])
  until_ms = 0
  if ARGV[3] == 'gone' or (ARGV[3] == 'client' and fails >= threshold) then
    redis.call('HSET', KEYS[1], 'disabled', 1, 'disabled_reason', ARGV[7])
    redis.call('ZADD', KEYS[2], 'inf', ARGV[8])
    permanent = 1
  elseif fails >= threshold then
    until_ms = math.floor(now + math.min(tonumber(ARGV[5]) * 2 ^ math.min(fails - threshold, 30), tonumber(ARGV[6])))
    redis.call('HSET', KEYS[1], 'disabled_until', until_ms)
    redis.call('ZADD', KEYS[2], until_ms, ARGV[8])
  end
end
return {fails, until_ms, permanent}
`)

// deferScript moves a delivery off the ready stream into the schedule, for
// a later time, without counting an attempt. Its payload's reference
// passes to the schedule's member, unless the same delivery (of an event
// added twice) is there already: one member holds one reference.
var deferScript = redis.NewScript(refsLua + `
-- KEYS: ready, schedule, refs; ARGV: group, entry id, due ms, member, event id ('' if not shared), payload prefix
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) == 0 then addref(KEYS[3], ARGV[6], ARGV[5], -1) end
return 1
`)

// moveScript puts due scheduled deliveries back on the ready stream. It is
// atomic, so every process may run it at once.
var moveScript = redis.NewScript(`
-- KEYS: schedule, ready; ARGV: now ms, limit
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'd', m)
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or '-1'}
`)

// HealthPolicy is GitLab's auto-disabling rule.
type HealthPolicy struct {
	// Threshold is the consecutive failure that disables (GitLab: 4).
	Threshold int
	// Base is the first temporary disable (1 min), doubled per further
	// failure up to Max (24 h).
	Base, Max time.Duration
}

// DeadLetterLimits bound the dead-letter stream: past either, its oldest
// entries are trimmed. Zero fields take the defaults.
type DeadLetterLimits struct {
	// MaxEntries caps the dead letters kept. Default: 100,000.
	MaxEntries int
	// MaxBytes caps the bytes of their documents (payload and delivery
	// fields) and reasons. Default: 256 MiB.
	MaxBytes int64
}

// Defaults of DeadLetterLimits.
const (
	DefaultMaxDeadLetters     = 100_000
	DefaultMaxDeadLetterBytes = 256 << 20
)

func (l DeadLetterLimits) withDefaults() DeadLetterLimits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxDeadLetters
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxDeadLetterBytes
	}
	return l
}

// Outcome is what to record for one delivery attempt.
type Outcome struct {
	// Success resets the hook's health.
	Success bool
	// Attempted is false for deliveries given up without an attempt (their
	// hook is disabled, they are too old): they go to the dead letters
	// without touching health.
	Attempted bool
	// Class is "client" for a 4xx (the hook is misconfigured), "gone" for
	// 410, "" otherwise.
	Class string
	// Retry schedules the next attempt at RetryAt; otherwise a failure is
	// dead-lettered with Reason.
	Retry   bool
	RetryAt time.Time
	Reason  string
	// Status is the attempt's result as text, kept as the hook's last status.
	Status string
}

// Settled is a hook's state after an attempt was recorded.
type Settled struct {
	// Already is true when another consumer settled the entry first.
	Already       bool
	Fails         int
	DisabledUntil time.Time
	Disabled      bool
	// LogID is the attempt's entry in the hook's log (Settle with an entry), or
	// LogErr why it could not be added.
	LogID  int64
	LogErr error
	// TrimmedForCount and TrimmedForBytes are the oldest dead letters
	// dropped to keep the stream within its DeadLetterLimits.
	TrimmedForCount, TrimmedForBytes int
}

// Settle records an attempt's outcome for the ready entry of m and, when
// e is set, appends the attempt to its hook's log: the queue side in the
// delivery's shard, the hook's health in its slot, in one round trip. A
// failure that would be retried asks the hook's health first (one more
// round trip, on failures only): a hook it disables for good dead-letters
// the delivery at once, and a hook it disables for a while gets the retry
// once it is back. A dead letter is kept within dl, split evenly over the
// shards.
func (s *Store) Settle(ctx context.Context, m *DeliveryMsg, o Outcome, p HealthPolicy, dl DeadLetterLimits,
	now time.Time, e *LogEntry, lim LogLimits) (Settled, error) {
	d := &m.Delivery
	var st Settled
	var health *redis.Cmd
	queueHealth := func(pl redis.Pipeliner, eval bool) {
		result := "fail"
		if o.Success {
			result = "ok"
		}
		health = runScript(ctx, pl, healthScript, eval, []string{s.keys.Health(d.HookID), s.keys.DisabledOf(d.HookID)},
			now.UnixMilli(), result, o.Class, p.Threshold, p.Base.Milliseconds(), p.Max.Milliseconds(), o.Status, d.HookID)
	}
	healthFirst := o.Attempted && !o.Success && o.Retry
	if healthFirst {
		_, err := s.work.do(ctx, queueHealth)
		if err == nil {
			err = st.readHealth(health)
		}
		if err != nil {
			return Settled{}, fmt.Errorf("recording the health of hook %d: %w", d.HookID, err)
		}
		switch {
		case st.Disabled:
			o.Retry, o.Reason = false, "hook disabled"
		case st.DisabledUntil.After(o.RetryAt):
			o.RetryAt = st.DisabledUntil
		}
		health = nil
	}
	keys, args, err := s.settleArgs(m, o, dl, now, e, lim)
	if err != nil {
		return Settled{}, err
	}
	var settle *redis.Cmd
	_, err = s.work.do(ctx, func(pl redis.Pipeliner, eval bool) {
		settle = runScript(ctx, pl, settleScript, eval, keys, args...)
		if (o.Attempted || o.Success) && !healthFirst {
			queueHealth(pl, eval)
		}
	})
	var res []any
	if err == nil {
		res, err = settle.Slice()
	}
	if err != nil {
		return Settled{}, fmt.Errorf("settling delivery %s of hook %d: %w", m.StreamID, d.HookID, err)
	}
	st.Already = res[0].(int64) == 1
	st.TrimmedForCount, st.TrimmedForBytes = int(res[1].(int64)), int(res[2].(int64))
	if e != nil && !st.Already {
		st.LogID, st.LogErr = logEntryNumber(res[3], d.HookID)
	}
	if health != nil {
		if err := st.readHealth(health); err != nil {
			return st, fmt.Errorf("recording the health of hook %d: %w", d.HookID, err)
		}
	}
	return st, nil
}

// readHealth takes healthScript's reply.
func (st *Settled) readHealth(c *redis.Cmd) error {
	h, err := c.Int64Slice()
	if err != nil {
		return err
	}
	st.Fails, st.Disabled = int(h[0]), h[2] == 1
	if h[1] > 0 {
		st.DisabledUntil = time.UnixMilli(h[1])
	}
	return nil
}

// settleArgs are settleScript's keys and arguments.
func (s *Store) settleArgs(m *DeliveryMsg, o Outcome, dl DeadLetterLimits, now time.Time, e *LogEntry, lim LogLimits) ([]string, []any, error) {
	d := &m.Delivery
	dl = dl.withDefaults()
	next, member := "done", ""
	switch {
	case o.Retry:
		nd := *d
		nd.Attempt++
		next, member = "retry", EncodeDelivery(&nd)
	case !o.Success:
		next = "dead"
	}
	doc := "" // the dead letter's document; a success needs none
	if next == "dead" {
		doc = EncodeDelivery(d)
	}
	ev, plen := "", 0
	if d.Shared {
		ev, plen = d.EventID, len(d.Body)
	}
	args := []any{GroupDeliver, m.StreamID, now.UnixMilli(), next, o.RetryAt.UnixMilli(), member, o.Reason,
		doc, ev, s.keys.PayloadPrefix(m.Shard), s.perShard(int64(dl.MaxEntries)), s.perShard(dl.MaxBytes)}
	if e != nil {
		la, err := s.logArgs(e, lim, d)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, "1", d.HookID, m.Shard)
		args = append(args, la...)
	} else {
		args = append(args, "", d.HookID, m.Shard, "0", "0", 0, "", "", "")
	}
	args = append(args, plen)
	keys := []string{s.keys.Ready(m.Shard), s.keys.Schedule(m.Shard), s.keys.Dead(m.Shard), s.keys.DeadBytes(m.Shard),
		s.keys.Refs(m.Shard), s.keys.HookLog(m.Shard, d.HookID), s.keys.Logs(m.Shard)}
	return keys, args, nil
}

// perShard is a bound split evenly over the shards, rounded up.
func (s *Store) perShard(n int64) int64 { return (n + int64(s.shards) - 1) / int64(s.shards) }

// Defer takes a ready entry off the stream and schedules it for due. It
// returns false when another consumer settled the entry first.
func (s *Store) Defer(ctx context.Context, m *DeliveryMsg, due time.Time) (bool, error) {
	member := EncodeDelivery(&m.Delivery)
	ev := ""
	if m.Delivery.Shared {
		ev = m.Delivery.EventID
	}
	var cmd *redis.Cmd
	_, err := s.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = runScript(ctx, p, deferScript, eval, []string{s.keys.Ready(m.Shard), s.keys.Schedule(m.Shard), s.keys.Refs(m.Shard)},
			GroupDeliver, m.StreamID, due.UnixMilli(), member, ev, s.keys.PayloadPrefix(m.Shard))
	})
	var n int64
	if err == nil {
		n, err = cmd.Int64()
	}
	if err != nil {
		return false, fmt.Errorf("deferring delivery %s of hook %d: %w", m.StreamID, m.Delivery.HookID, err)
	}
	return n == 1, nil
}

// MoveDue moves up to limit due deliveries of each shard to its ready
// stream and returns how many it moved at most in one shard, and when the
// next one is due (zero if none).
func (s *Store) MoveDue(ctx context.Context, now time.Time, limit int) (int, time.Time, error) {
	n := s.readShards()
	cmds, err := s.scripts(ctx, n, func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return runScript(ctx, p, moveScript, eval, []string{s.keys.Schedule(i), s.keys.Ready(i)}, now.UnixMilli(), limit)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("moving due deliveries: %w", err)
	}
	most := 0
	var next time.Time
	for _, c := range cmds {
		res, _ := c.Slice()
		if len(res) < 2 {
			continue
		}
		moved, _ := res[0].(int64)
		most = max(most, int(moved))
		if v, ok := res[1].(string); ok && v != "-1" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil {
				if t := time.UnixMilli(int64(ms)); next.IsZero() || t.Before(next) {
					next = t
				}
			}
		}
	}
	return most, next, nil
}
