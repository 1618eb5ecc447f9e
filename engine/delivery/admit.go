package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"

	"go.uber.org/zap"
)

// DisabledInterval is how often each process re-reads which hooks are
// disabled. Between reads, a hook disabled by another process may still get
// attempts here: Redis does not count failures while a hook is disabled,
// and its retries wait for the hook anyway, so the cost is a few requests.
const DisabledInterval = time.Second

// disabledView is this process's copy of the disabled hooks (the Redis
// sorted set that settling maintains). A delivery of a hook not in it goes
// without asking Redis first: the admission check costs a script run per
// delivery, and nearly every hook is healthy. A hook in it is checked in
// Redis, which has the last word (it may have been re-enabled since).
type disabledView struct {
	mu    sync.RWMutex
	until map[int64]time.Time // zero: until re-enabled
	// gen counts the disables noted here; noted holds the count at each
	// hook's last one since the last replace, so that a copy read from
	// Redis before a settle disabled a hook does not undo the note.
	gen   uint64
	noted map[int64]uint64
}

// maybe tells whether hook id may be disabled at now.
func (v *disabledView) maybe(id int64, now time.Time) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	u, ok := v.until[id]
	return ok && (u.IsZero() || u.After(now))
}

// generation is what replace takes: the disables noted so far.
func (v *disabledView) generation() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.gen
}

// replace installs a fresh copy read from Redis, whose read began at
// generation since. A disable noted after that wins over the copy (which
// may predate it); a stale "disabled" would only cost a check in Redis.
func (v *disabledView) replace(until map[int64]time.Time, since uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, g := range v.noted {
		if u, ok := v.until[id]; ok && g > since {
			if until == nil {
				until = map[int64]time.Time{}
			}
			until[id] = u
		}
	}
	v.until, v.noted = until, nil
}

// note records what settling a delivery of hook id found; success tells
// whether the attempt succeeded (which re-enables the hook).
func (v *disabledView) note(id int64, st redisstore.Settled, success bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case st.Disabled:
		v.set(id, time.Time{})
		v.mark(id)
	case !st.DisabledUntil.IsZero():
		v.set(id, st.DisabledUntil)
		v.mark(id)
	case success && !st.Already:
		delete(v.until, id)
	}
}

// forget drops hook id: it was re-enabled here.
func (v *disabledView) forget(id int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.until, id)
}

// mark records that a disable of hook id was noted here now.
func (v *disabledView) mark(id int64) {
	v.gen++
	if v.noted == nil {
		v.noted = map[int64]uint64{}
	}
	v.noted[id] = v.gen
}

func (v *disabledView) set(id int64, until time.Time) {
	if v.until == nil {
		v.until = map[int64]time.Time{}
	}
	v.until[id] = until
}

// Refresh re-reads which hooks are disabled, and gives deliveries parked
// too long to the schedule; the runtime calls it every disabledInterval.
// A failed read keeps the view as it was.
//
// Deliveries are held until the first read succeeds: before it, a hook
// disabled by another process (or by this one before a restart) would get
// requests. The first read moves the health kept by a version before
// shards first, for the same reason.
func (d *Deliverer) Refresh(ctx context.Context) {
	if !d.viewed.Load() {
		hooks := d.hooks().All()
		ids := make([]int64, len(hooks))
		for i, h := range hooks {
			ids[i] = h.ID
		}
		if _, err := d.store.Legacy.MoveHealth(ctx, ids); err != nil {
			d.log.Warn("moving the health kept before shards failed; deliveries wait", zap.Error(err))
			return
		}
	}
	since := d.disabled.generation()
	if until, err := d.store.Health.DisabledUntil(ctx, time.Now()); err == nil {
		d.disabled.replace(until, since)
		d.viewed.Store(true)
	}
	d.ExpireParked(time.Now())
}

// admitted tells whether a delivery of hook may go now; when it may not, it
// was postponed or given up. Only a hook that may be disabled, or calls
// that are rate limited (a shared count), are asked of Redis.
func (d *Deliverer) admitted(ctx context.Context, cfg *Config, m *redisstore.DeliveryMsg, hook *webhook.Hook, now time.Time) bool {
	if cfg.CallsPerMinute == 0 && !d.disabled.maybe(hook.ID, now) {
		return true
	}
	verdict, until, err := d.store.Health.Admit(ctx, hook.ID, topLevel(hook), cfg.CallsPerMinute, now)
	switch {
	case err != nil:
		// Fail open: Redis trouble must not stop deliveries that may go.
		d.log.Warn("checking hook health failed; delivering anyway", zap.Int64("hook_id", hook.ID), zap.Error(err))
	case verdict == redisstore.HookDisabled:
		d.GiveUp(m, hook, "hook disabled: re-enable it (a successful test does) and redrive")
		return false
	case verdict == redisstore.HookCooling:
		// Beyond GitLab (which drops them): wait until the hook comes back.
		d.postpone(m, until.Add(jitter(2*time.Second)), "hook_disabled")
		return false
	case verdict == redisstore.RateLimited:
		d.postpone(m, until.Add(jitter(5*time.Second)), "rate_limited")
		return false
	}
	return true
}
