package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// settleScript records the outcome of one delivery attempt atomically: it
// acknowledges the entry, updates the hook's health as GitLab does (a success
// resets; the threshold-th consecutive failure disables temporarily, 1 min
// doubling up to a cap; a client error at the threshold, or 410 Gone at once,
// disables until a person re-enables) and then schedules the retry or
// dead-letters the delivery. Like GitLab, failures reported while the hook is
// already disabled do not count again.
//
// A dead letter records its size (document and reason) in its "n" field
// and in the dead-bytes counter; the oldest are trimmed while the stream
// holds more entries or bytes than its bounds. Entries without "n" (from
// before the counter) are trimmed the same, uncounted. Entries are read one
// at a time when only the byte bound is exceeded, so no payload is copied
// into the script that is not dropped.
var settleScript = redis.NewScript(`
-- KEYS: ready, schedule, health, dead, disabled hooks (zset: hook id -> until ms, inf = permanent), dead bytes
-- ARGV: group, entry id, now ms, result (ok|fail|dead), class (''|client|gone),
--       next (retry|dead), retry due ms, retry member, dead reason,
--       threshold, base backoff ms, max backoff ms, status text, delivery, hook id,
--       max dead letters, max dead-letter bytes
-- returns: fails, disabled until ms, permanently disabled, dead letters trimmed for count, for bytes
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {-1, 0, 0, 0, 0} end
redis.call('XDEL', KEYS[1], ARGV[2])
local now = tonumber(ARGV[3])
local function dead(reason)
  local n = #ARGV[14] + #reason
  local len = redis.call('XLEN', KEYS[4])
  if len == 0 then redis.call('DEL', KEYS[6]) end
  redis.call('XADD', KEYS[4], '*', 'd', ARGV[14], 'reason', reason, 'at', now, 'n', n)
  len = len + 1
  local bytes = redis.call('INCRBY', KEYS[6], n)
  local maxlen, maxbytes = tonumber(ARGV[16]), tonumber(ARGV[17])
  local by_count, by_bytes = 0, 0
  while len > 0 and (len > maxlen or bytes > maxbytes) do
    local batch = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', math.min(math.max(len - maxlen, 1), 1000))
    for _, e in ipairs(batch) do
      if len <= maxlen and bytes <= maxbytes then break end
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'n' then bytes = bytes - (tonumber(f[i + 1]) or 0) end
      end
      if len > maxlen then by_count = by_count + 1 else by_bytes = by_bytes + 1 end
      len = len - 1
    end
    redis.call('XTRIM', KEYS[4], 'MAXLEN', len)
  end
  if len == 0 or bytes <= 0 then
    redis.call('DEL', KEYS[6])
  elseif by_count + by_bytes > 0 then
    redis.call('SET', KEYS[6], bytes)
  end
  return by_count, by_bytes
end
if ARGV[4] == 'ok' then
  redis.call('HSET', KEYS[3], 'fails', 0, 'disabled_until', 0, 'last_ok', now, 'last_status', ARGV[13])
  redis.call('ZREM', KEYS[5], ARGV[15])
  return {0, 0, 0, 0, 0}
end
if ARGV[4] == 'dead' then
  local c, b = dead(ARGV[9])
  return {0, 0, 0, c, b}
end
local h = redis.call('HMGET', KEYS[3], 'disabled', 'disabled_until', 'fails')
local permanent = (h[1] == '1') and 1 or 0
local until_ms = tonumber(h[2] or '0') or 0
local fails = tonumber(h[3] or '0') or 0
if permanent == 0 and until_ms <= now then
  fails = redis.call('HINCRBY', KEYS[3], 'fails', 1)
  redis.call('HSET', KEYS[3], 'last_fail', now, 'last_status', ARGV[13])
  local threshold = tonumber(ARGV[10])
  until_ms = 0
  if ARGV[5] == 'gone' or (ARGV[5] == 'client' and fails >= threshold) then
    redis.call('HSET', KEYS[3], 'disabled', 1, 'disabled_reason', ARGV[13])
    redis.call('ZADD', KEYS[5], 'inf', ARGV[15])
    permanent = 1
  elseif fails >= threshold then
    until_ms = math.floor(now + math.min(tonumber(ARGV[11]) * 2 ^ math.min(fails - threshold, 30), tonumber(ARGV[12])))
    redis.call('HSET', KEYS[3], 'disabled_until', until_ms)
    redis.call('ZADD', KEYS[5], until_ms, ARGV[15])
  end
end
local c, b = 0, 0
if ARGV[6] == 'retry' and permanent == 0 then
  redis.call('ZADD', KEYS[2], math.max(tonumber(ARGV[7]), until_ms), ARGV[8])
else
  local reason = ARGV[9]
  if permanent == 1 and ARGV[6] == 'retry' then reason = 'hook disabled' end
  c, b = dead(reason)
end
return {fails, until_ms, permanent, c, b}
`)

// deferScript moves a delivery off the ready stream into the schedule, for
// a later time, without counting an attempt.
var deferScript = redis.NewScript(`
-- KEYS: ready, schedule; ARGV: group, entry id, due ms, member
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
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

// admitScript decides whether a delivery may go now: not if its hook is
// disabled, nor if its top-level namespace used up this minute's calls.
var admitScript = redis.NewScript(`
-- KEYS: health, rate window; ARGV: now ms, calls per minute (0: no limit), window ttl ms
local h = redis.call('HMGET', KEYS[1], 'disabled', 'disabled_until')
if h[1] == '1' then return {1, 0} end
local u = tonumber(h[2] or '0') or 0
if u > tonumber(ARGV[1]) then return {2, u} end
local limit = tonumber(ARGV[2])
if limit > 0 then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
  if n > limit then return {3, 0} end
end
return {0, 0}
`)

// redriveScript moves a dead letter back to the ready stream as a first
// attempt, and takes its size off the dead-bytes counter.
var redriveScript = redis.NewScript(`
-- KEYS: dead, ready, dead bytes; ARGV: dead entry id, delivery
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == 'n' then redis.call('DECRBY', KEYS[3], tonumber(f[i + 1]) or 0) end
end
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
return 1
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

// Settle records an attempt's outcome for the ready entry streamID and,
// when e is set, appends the attempt to its hook's log (AppendLog) in the
// same round trip. A failed append does not fail the settle: it is
// reported in Settled.LogErr. A dead letter is kept within dl.
func (s *Store) Settle(ctx context.Context, streamID string, d *webhook.Delivery, o Outcome, p HealthPolicy, dl DeadLetterLimits,
	now time.Time, e *LogEntry, lim LogLimits) (Settled, error) {
	dl = dl.withDefaults()
	result := "fail"
	switch {
	case o.Success:
		result = "ok"
	case !o.Attempted:
		result = "dead"
	}
	next, member := "dead", ""
	if o.Retry {
		nd := *d
		nd.Attempt++
		next, member = "retry", EncodeDelivery(&nd)
	}
	doc := "" // the dead letter's document; a success needs none
	if !o.Success {
		doc = EncodeDelivery(d)
	}
	var logArgs []any
	if e != nil {
		var err error
		if logArgs, err = s.logArgs(e, lim); err != nil {
			return Settled{}, err
		}
	}
	keys := []string{s.keys.Ready(), s.keys.Schedule(), s.keys.Health(d.HookID), s.keys.Dead(), s.keys.Disabled(), s.keys.DeadBytes()}
	var logCmd, settle *redis.Cmd
	_, err := s.work.do(ctx, func(pl redis.Pipeliner, eval bool) {
		if logArgs != nil {
			logCmd = runScript(ctx, pl, appendLog, eval, []string{s.keys.HookLog(e.HookID)}, logArgs...)
		}
		settle = runScript(ctx, pl, settleScript, eval, keys,
			GroupDeliver, streamID, now.UnixMilli(), result, o.Class, next, o.RetryAt.UnixMilli(), member, o.Reason,
			p.Threshold, p.Base.Milliseconds(), p.Max.Milliseconds(), o.Status, doc, d.HookID, dl.MaxEntries, dl.MaxBytes)
	})
	var res []int64
	if err == nil {
		res, err = settle.Int64Slice()
	}
	if err != nil {
		return Settled{}, fmt.Errorf("settling delivery %s of hook %d: %w", streamID, d.HookID, err)
	}
	st := Settled{Already: res[0] == -1, Fails: int(res[0]), Disabled: res[2] == 1,
		TrimmedForCount: int(res[3]), TrimmedForBytes: int(res[4])}
	if res[1] > 0 {
		st.DisabledUntil = time.UnixMilli(res[1])
	}
	if logCmd != nil {
		st.LogID, st.LogErr = logEntryID(logCmd, d.HookID)
	}
	return st, nil
}

// Defer takes a ready entry off the stream and schedules it for due. It
// returns false when another consumer settled the entry first.
func (s *Store) Defer(ctx context.Context, streamID string, d *webhook.Delivery, due time.Time) (bool, error) {
	member := EncodeDelivery(d)
	var cmd *redis.Cmd
	_, err := s.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = runScript(ctx, p, deferScript, eval, []string{s.keys.Ready(), s.keys.Schedule()},
			GroupDeliver, streamID, due.UnixMilli(), member)
	})
	var n int64
	if err == nil {
		n, err = cmd.Int64()
	}
	if err != nil {
		return false, fmt.Errorf("deferring delivery %s of hook %d: %w", streamID, d.HookID, err)
	}
	return n == 1, nil
}

// MoveDue moves up to limit due deliveries to the ready stream and returns
// how many it moved and when the next one is due (zero if none).
func (s *Store) MoveDue(ctx context.Context, now time.Time, limit int) (int, time.Time, error) {
	res, err := moveScript.Run(ctx, s.rdb, []string{s.keys.Schedule(), s.keys.Ready()}, now.UnixMilli(), limit).Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("moving due deliveries: %w", err)
	}
	moved, _ := res[0].(int64)
	var next time.Time
	if s, ok := res[1].(string); ok && s != "-1" {
		if ms, err := strconv.ParseFloat(s, 64); err == nil {
			next = time.UnixMilli(int64(ms))
		}
	}
	return int(moved), next, nil
}

// Admission is Admit's verdict on a delivery.
type Admission int

// Admission verdicts (the admission script's return values).
const (
	Admitted     Admission = 0
	HookDisabled Admission = 1 // until a person re-enables it
	HookCooling  Admission = 2 // temporarily disabled
	RateLimited  Admission = 3
)

// rateWindowTTL keeps a minute's call count a little past its minute.
const rateWindowTTL = 2 * time.Minute

// Admit checks whether a delivery of hookID may go now. limit is the calls
// per minute of the hook's top-level namespace (0: none); admitted calls
// are counted.
func (s *Store) Admit(ctx context.Context, hookID int64, topLevel string, limit int, now time.Time) (verdict Admission, until time.Time, err error) {
	minute := now.Unix() / 60
	keys := []string{s.keys.Health(hookID), s.keys.RateWindow(topLevel, minute)}
	var cmd *redis.Cmd
	_, err = s.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = runScript(ctx, p, admitScript, eval, keys, now.UnixMilli(), limit, rateWindowTTL.Milliseconds())
	})
	var res []int64
	if err == nil {
		res, err = cmd.Int64Slice()
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("admitting delivery of hook %d: %w", hookID, err)
	}
	switch Admission(res[0]) {
	case HookCooling:
		until = time.UnixMilli(res[1])
	case RateLimited:
		until = time.Unix((minute+1)*60, 0)
	}
	return Admission(res[0]), until, nil
}

// Health is a hook's failure state.
type Health struct {
	Fails         int
	DisabledUntil time.Time // zero when not temporarily disabled
	Disabled      bool      // until a person re-enables it
	LastStatus    string
}

// HookHealth reads a hook's failure state.
func (s *Store) HookHealth(ctx context.Context, hookID int64) (Health, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.Health(hookID), "fails", "disabled_until", "disabled", "last_status").Result()
	if err != nil {
		return Health{}, fmt.Errorf("reading health of hook %d: %w", hookID, err)
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	h := Health{Disabled: str(2) == "1", LastStatus: str(3)}
	h.Fails, _ = strconv.Atoi(str(0))
	if ms, _ := strconv.ParseInt(str(1), 10, 64); ms > 0 {
		h.DisabledUntil = time.UnixMilli(ms)
	}
	return h, nil
}

// ResetHealth re-enables a hook (a successful test, or a person).
func (s *Store) ResetHealth(ctx context.Context, hookID int64) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.Health(hookID))
		p.ZRem(ctx, s.keys.Disabled(), hookID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("resetting health of hook %d: %w", hookID, err)
	}
	return nil
}

// DisabledUntil returns the hooks disabled at now, with when they come
// back (the zero time: until re-enabled).
func (s *Store) DisabledUntil(ctx context.Context, now time.Time) (map[int64]time.Time, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.keys.Disabled(), &redis.ZRangeBy{
		Min: strconv.FormatInt(now.UnixMilli()+1, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("reading disabled hooks: %w", err)
	}
	out := make(map[int64]time.Time, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		id, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			continue
		}
		var until time.Time
		if !math.IsInf(z.Score, 1) {
			until = time.UnixMilli(int64(z.Score))
		}
		out[id] = until
	}
	return out, nil
}

// DisabledHooks counts the hooks disabled now (temporarily or until
// re-enabled), across all processes.
func (s *Store) DisabledHooks(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.rdb.ZCount(ctx, s.keys.Disabled(), strconv.FormatInt(now.UnixMilli()+1, 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("counting disabled hooks: %w", err)
	}
	return n, nil
}

// DeadLetter is a delivery given up on.
type DeadLetter struct {
	ID       string
	Delivery webhook.Delivery
	Reason   string
	At       time.Time
	Err      error
}

// DeadLetters lists up to count dead letters, oldest first, after the
// stream ID start ("-" for the beginning).
func (s *Store) DeadLetters(ctx context.Context, start string, count int64) ([]DeadLetter, error) {
	if start != "-" {
		start = "(" + start
	}
	msgs, err := s.rdb.XRangeN(ctx, s.keys.Dead(), start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		v := fields(m.Values)
		d, err := DecodeDelivery(v.str("d"))
		at, _ := v.int("at")
		out = append(out, DeadLetter{ID: m.ID, Delivery: d, Reason: v.str("reason"), At: time.UnixMilli(at), Err: err})
	}
	return out, nil
}

// Redrive puts dead letters back on the ready stream as first attempts.
// It returns how many it moved; unknown IDs are skipped.
func (s *Store) Redrive(ctx context.Context, ids ...string) (int, error) {
	moved := 0
	for _, id := range ids {
		msgs, err := s.rdb.XRange(ctx, s.keys.Dead(), id, id).Result()
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		if len(msgs) == 0 {
			continue
		}
		d, err := DecodeDelivery(fields(msgs[0].Values).str("d"))
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		d.Attempt = 1
		n, err := redriveScript.Run(ctx, s.rdb, []string{s.keys.Dead(), s.keys.Ready(), s.keys.DeadBytes()}, id, EncodeDelivery(&d)).Int64()
		if err != nil {
			return moved, fmt.Errorf("redriving dead letter %s: %w", id, err)
		}
		moved += int(n)
	}
	return moved, nil
}

// DeliveryCounts returns how many times each pending ready entry was handed
// out (to any consumer), for poison detection.
func (s *Store) DeliveryCounts(ctx context.Context, first, last string) (map[string]int64, error) {
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.keys.Ready(), Group: GroupDeliver, Start: first, End: last, Count: 1000,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("reading pending deliveries: %w", err)
	}
	out := make(map[string]int64, len(pend))
	for _, p := range pend {
		out[p.ID] = p.RetryCount
	}
	return out, nil
}
