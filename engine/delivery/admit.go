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
}

// maybe tells whether hook id may be disabled at now.
func (v *disabledView) maybe(id int64, now time.Time) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	u, ok := v.until[id]
	return ok && (u.IsZero() || u.After(now))
}

// replace installs a fresh copy read from Redis.
func (v *disabledView) replace(until map[int64]time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.until = until
}

// note records what settling a delivery of hook id found; success tells
// whether the attempt succeeded (which re-enables the hook).
func (v *disabledView) note(id int64, st redisstore.Settled, success bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case st.Disabled:
		v.set(id, time.Time{})
	case !st.DisabledUntil.IsZero():
		v.set(id, st.DisabledUntil)
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
	if until, err := d.store.Health.DisabledUntil(ctx, time.Now()); err == nil {
		d.disabled.replace(until)
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
