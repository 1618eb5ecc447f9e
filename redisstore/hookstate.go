package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A hook's shared state (health, its entry in the disabled index) lives in
// its hook slot; rate windows in the slot of their top-level namespace.

// admitScript decides whether a delivery of a hook may go now: not if the
// hook is disabled or cooling down.
var admitScript = redis.NewScript(`
-- KEYS: health; ARGV: now ms
local h = redis.call('HMGET', KEYS[1], 'disabled', 'disabled_until')
if h[1] == '1' then return {1, 0} end
local u = tonumber(h[2] or '0') or 0
if u > tonumber(ARGV[1]) then return {2, u} end
return {0, 0}
`)

// rateScript counts a call in a namespace's minute.
var rateScript = redis.NewScript(`
-- KEYS: rate window; ARGV: window ttl ms
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)

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
// per minute of the hook's top-level namespace (0: none). The hook's health
// and the namespace's count are in different slots, so they are asked in
// one round trip but not one script: a call of a disabled hook is counted
// too.
func (s *Store) Admit(ctx context.Context, hookID int64, topLevel string, limit int, now time.Time) (verdict Admission, until time.Time, err error) {
	minute := now.Unix() / 60
	var health, rate *redis.Cmd
	_, err = s.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		health = runScript(ctx, p, admitScript, eval, []string{s.keys.Health(hookID)}, now.UnixMilli())
		if limit > 0 {
			rate = runScript(ctx, p, rateScript, eval, []string{s.keys.RateWindow(topLevel, minute)}, rateWindowTTL.Milliseconds())
		}
	})
	var res []int64
	if err == nil {
		res, err = health.Int64Slice()
	}
	var calls int64
	if err == nil && rate != nil {
		calls, err = rate.Int64()
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("admitting delivery of hook %d: %w", hookID, err)
	}
	switch {
	case Admission(res[0]) == HookCooling:
		return HookCooling, time.UnixMilli(res[1]), nil
	case Admission(res[0]) != Admitted:
		return Admission(res[0]), time.Time{}, nil
	case rate != nil && calls > int64(limit):
		return RateLimited, time.Unix((minute+1)*60, 0), nil
	}
	return Admitted, time.Time{}, nil
}

// Health is a hook's failure state.
type Health struct {
	Fails         int
	DisabledUntil time.Time // zero when not temporarily disabled
	Disabled      bool      // until a person re-enables it
	LastStatus    string
}

// HookHealth reads a hook's failure state (from the layout before shards
// while the janitor has not moved it yet).
func (s *Store) HookHealth(ctx context.Context, hookID int64) (Health, error) {
	var now, old *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.HMGet(ctx, s.keys.Health(hookID), "fails", "disabled_until", "disabled", "last_status")
		old = p.HMGet(ctx, s.keys.legacyHealth(hookID), "fails", "disabled_until", "disabled", "last_status")
		return nil
	})
	if err != nil {
		return Health{}, fmt.Errorf("reading health of hook %d: %w", hookID, err)
	}
	v := now.Val()
	if v[0] == nil && v[1] == nil && v[2] == nil && v[3] == nil {
		v = old.Val()
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
		p.ZRem(ctx, s.keys.DisabledOf(hookID), hookID)
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
	cmds := make([]*redis.ZSliceCmd, HookSlots)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j := range cmds {
			cmds[j] = p.ZRangeByScoreWithScores(ctx, s.keys.Disabled(j), &redis.ZRangeBy{
				Min: strconv.FormatInt(now.UnixMilli()+1, 10), Max: "+inf"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading disabled hooks: %w", err)
	}
	out := map[int64]time.Time{}
	for _, c := range cmds {
		for _, z := range c.Val() {
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
	}
	return out, nil
}

// DisabledHooks counts the hooks disabled now (temporarily or until
// re-enabled), across all processes.
func (s *Store) DisabledHooks(ctx context.Context, now time.Time) (int64, error) {
	cmds := make([]*redis.IntCmd, HookSlots)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j := range cmds {
			cmds[j] = p.ZCount(ctx, s.keys.Disabled(j), strconv.FormatInt(now.UnixMilli()+1, 10), "+inf")
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting disabled hooks: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
