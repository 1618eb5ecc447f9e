package engine

import (
	"context"
	"sync"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// disabledInterval is how often each process re-reads which hooks are
// disabled. Between reads, a hook disabled by another process may still get
// attempts here: Redis does not count failures while a hook is disabled,
// and its retries wait for the hook anyway, so the cost is a few requests.
const disabledInterval = time.Second

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

// secondLoop keeps the disabled view current and gives deliveries parked
// too long to the schedule.
func (r *Runtime) secondLoop(ctx context.Context) {
	defer r.loops.Done()
	for ctx.Err() == nil {
		if until, err := r.store.DisabledUntil(ctx, time.Now()); err == nil {
			r.disabled.replace(until)
		}
		r.expireParked(time.Now())
		sleep(ctx, disabledInterval)
	}
}

// mustAdmit tells whether a delivery of h must be admitted by Redis before
// it goes: when calls are rate limited (a shared count), or when the hook
// may be disabled.
func (r *Runtime) mustAdmit(cfg *Config, h *webhook.Hook, now time.Time) bool {
	return cfg.CallsPerMinute > 0 || r.disabled.maybe(h.ID, now)
}
