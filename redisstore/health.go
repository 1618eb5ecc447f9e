package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Health is the hooks' shared failure state, as GitLab keeps it
// (recent_failures, disabled_until): a hook's health and its entry in the
// disabled index live in its hook slot; the rate windows of top-level
// namespaces in the slot of their name.
type Health struct{ *conn }

// HealthPolicy is GitLab's auto-disabling rule.
type HealthPolicy struct {
	// Threshold is the consecutive failure that disables (GitLab: 4).
	Threshold int
	// Base is the first temporary disable (1 min), doubled per further
	// failure up to Max (24 h).
	Base, Max time.Duration
	// Mode is webhook.AutoDisableGitLab ("" too: a 4xx at the threshold,
	// or a 410, disables until re-enabled), AutoDisableOff (failures are
	// counted, nothing is disabled) or AutoDisablePermanentAfter (every
	// failure alike; the PermanentAfter-th disables until re-enabled).
	Mode           string
	PermanentAfter int
}

// args are the policy's named arguments, as lua/includes/health.lua's
// healthpolicy reads them.
func (p HealthPolicy) args() []any {
	mode := p.Mode
	if mode == "" {
		mode = "gitlab"
	}
	return []any{"threshold", p.Threshold, "base", p.Base.Milliseconds(), "max", p.Max.Milliseconds(), "mode", mode,
		"after", p.PermanentAfter}
}

// HealthEvent is what an attempt changed of its hook's health.
type HealthEvent int

// Health events (lua/includes/health.lua's).
const (
	HealthUnchanged HealthEvent = 0
	HealthDisabled  HealthEvent = 1 // this failure disabled the hook (for a while, or until re-enabled)
	HealthRecovered HealthEvent = 2 // this success ended a disable
)

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
func (h *Health) Admit(ctx context.Context, hookID int64, topLevel string, limit int, now time.Time) (verdict Admission, until time.Time, err error) {
	minute := now.Unix() / 60
	var health, rate *redis.Cmd
	_, err = h.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		health = admitScript.queue(ctx, p, eval, []string{h.keys.Health(hookID)}, now.UnixMilli())
		if limit > 0 {
			rate = countRateScript.queue(ctx, p, eval, []string{h.keys.RateWindow(topLevel, minute)}, rateWindowTTL.Milliseconds())
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

// HealthState is a hook's failure state.
type HealthState struct {
	Fails         int
	DisabledUntil time.Time // zero when not temporarily disabled
	Disabled      bool      // until a person re-enables it
	LastStatus    string
}

// HookHealth reads a hook's failure state (from the layout before shards
// while the janitor has not moved it yet).
func (h *Health) HookHealth(ctx context.Context, hookID int64) (HealthState, error) {
	var now, old *redis.SliceCmd
	_, err := h.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.HMGet(ctx, h.keys.Health(hookID), "fails", "disabled_until", "disabled", "last_status")
		old = p.HMGet(ctx, h.keys.legacyHealth(hookID), "fails", "disabled_until", "disabled", "last_status")
		return nil
	})
	if err != nil {
		return HealthState{}, fmt.Errorf("reading health of hook %d: %w", hookID, err)
	}
	v := now.Val()
	if v[0] == nil && v[1] == nil && v[2] == nil && v[3] == nil {
		v = old.Val()
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	st := HealthState{Disabled: str(2) == "1", LastStatus: str(3)}
	st.Fails, _ = strconv.Atoi(str(0))
	if ms, _ := strconv.ParseInt(str(1), 10, 64); ms > 0 {
		st.DisabledUntil = time.UnixMilli(ms)
	}
	return st, nil
}

// ResetHealth re-enables a hook (a successful test, or a person); it
// reports whether the hook was disabled (for a while, or until re-enabled)
// at now.
func (h *Health) ResetHealth(ctx context.Context, hookID int64, now time.Time) (wasDisabled bool, err error) {
	var before *redis.SliceCmd
	_, err = h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		before = p.HMGet(ctx, h.keys.Health(hookID), "disabled", "disabled_until")
		p.Del(ctx, h.keys.Health(hookID))
		p.ZRem(ctx, h.keys.DisabledOf(hookID), hookID)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("resetting health of hook %d: %w", hookID, err)
	}
	v := before.Val()
	disabled, _ := v[0].(string)
	until, _ := v[1].(string)
	ms, _ := strconv.ParseInt(until, 10, 64)
	return disabled == "1" || ms > now.UnixMilli(), nil
}

// DisabledUntil returns the hooks disabled at now, with when they come
// back (the zero time: until re-enabled).
func (h *Health) DisabledUntil(ctx context.Context, now time.Time) (map[int64]time.Time, error) {
	cmds := make([]*redis.ZSliceCmd, HookSlots)
	_, err := h.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j := range cmds {
			cmds[j] = p.ZRangeByScoreWithScores(ctx, h.keys.Disabled(j), &redis.ZRangeBy{
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

// queueRecordHealth queues lua/record_health.lua for an attempt of hook
// hookID: the health side of Queue.Settle.
func queueRecordHealth(ctx context.Context, p redis.Pipeliner, eval bool, k Keys, hookID int64, o Outcome,
	pol HealthPolicy) *redis.Cmd {
	args := append([]any{"now", o.At.UnixMilli()}, healthArgs(hookID, o, pol)...)
	return recordHealthScript.queue(ctx, p, eval, []string{k.Health(hookID), k.DisabledOf(hookID)}, args...)
}

// healthArgs are the named arguments of an attempt's health, as
// lua/record_health.lua and lua/settle_health.lua take them.
func healthArgs(hookID int64, o Outcome, pol HealthPolicy) []any {
	return append([]any{"result", result(o), "class", o.Class, "health_status", o.Status, "health_hook", hookID},
		pol.args()...)
}

// result is an attempt's result as the health scripts take it.
func result(o Outcome) string {
	if o.Success {
		return "ok"
	}
	return "fail"
}
