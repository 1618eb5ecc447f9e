package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// HookPollInterval is how often each process checks whether the hooks
// managed through the API changed (in any process).
const HookPollInterval = time.Second

// dynamicState tracks the API-managed hooks the runtime has loaded.
type dynamicState struct {
	mu     sync.Mutex // serialises loads
	loaded bool
	// ready is set once the hooks were loaded: captures may then fan
	// their events out themselves.
	ready   atomic.Bool
	version int64
	box     *secret.Box // the key the loaded hooks were opened with
	lastErr string      // last load error logged, to log each kind once
}

// RefreshHooks loads the API-managed hooks from Redis and puts them in
// effect. The API calls it after every change, so the change applies in
// this process at once; other processes pick it up within
// HookPollInterval. Hooks whose id collides with a configured hook are
// skipped (and logged).
func (r *Runtime) RefreshHooks(ctx context.Context) error {
	cfg := r.cfg.Load()
	if cfg == nil {
		return errors.New("runtime is not configured")
	}
	r.dyn.mu.Lock()
	defer r.dyn.mu.Unlock()
	recs, version, err := r.store.Hooks(cfg.Secrets).LoadHooks(ctx)
	if err != nil {
		return err
	}
	r.hooksMu.Lock()
	static := r.static
	r.hooksMu.Unlock()
	hooks := make([]*webhook.Hook, 0, len(recs))
	for _, rec := range recs {
		if _, clash := static.Get(rec.ID); clash {
			r.log.Error("API-managed hook ignored: a configured hook has the same id; give the configured hook another id",
				zap.Int64("hook_id", rec.ID))
			continue
		}
		h, err := rec.Hook()
		if err != nil {
			r.log.Error("API-managed hook ignored: invalid in Redis", zap.Int64("hook_id", rec.ID), zap.Error(err))
			continue
		}
		hooks = append(hooks, h)
	}
	// Integrations after hooks: they are at least as new as the version.
	irecs, err := r.store.Integrations(cfg.Secrets).LoadIntegrations(ctx)
	if err != nil {
		return err
	}
	for _, rec := range irecs {
		if _, clash := static.Get(rec.ID); clash {
			r.log.Error("chat integration ignored: a configured hook has the same id; give the configured hook another id",
				zap.Int64("hook_id", rec.ID))
			continue
		}
		h, err := rec.Hook()
		if err != nil {
			r.log.Error("chat integration ignored: invalid in Redis", zap.Int64("hook_id", rec.ID), zap.Error(err))
			continue
		}
		hooks = append(hooks, h)
	}
	set, err := webhook.NewHookSet(hooks)
	if err != nil {
		return err
	}
	if err := r.SetDynamicHooks(set); err != nil {
		return err
	}
	if !r.dyn.loaded || r.dyn.version != version {
		r.log.Info("API-managed hooks loaded", zap.Int64("version", version), zap.Int("hooks", set.Len()))
	}
	r.dyn.loaded, r.dyn.version, r.dyn.box = true, version, cfg.Secrets
	r.dyn.ready.Store(true)
	return nil
}

// checkStoredHooks loads the API-managed hooks before the runtime starts (or
// takes a new configuration). Hooks with secrets the configured key cannot
// open stop the start: running without them would silently drop their
// deliveries. Redis being unreachable does not: the loop retries.
func (r *Runtime) checkStoredHooks() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := r.RefreshHooks(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, secret.ErrNoKey):
		return fmt.Errorf("hooks managed through the API have encrypted secrets in Redis, but the webhooks app has no encryption_key: %w", err)
	case errors.Is(err, secret.ErrDecrypt):
		return fmt.Errorf("the webhooks app's encryption_key does not open the secrets of the hooks in Redis (was the key changed?): %w", err)
	}
	r.log.Warn("could not load API-managed hooks yet; retrying in the background", zap.Error(err))
	return nil
}

// pollHooks reloads the API-managed hooks when their version in Redis
// changed or the encryption key was replaced by a reload; the runtime calls
// it every HookPollInterval. A failure is logged once per kind.
func (r *Runtime) pollHooks(ctx context.Context) {
	if err := r.reloadHooks(ctx); err != nil && ctx.Err() == nil {
		r.dyn.mu.Lock()
		if msg := err.Error(); msg != r.dyn.lastErr {
			r.dyn.lastErr = msg
			r.log.Warn("reloading API-managed hooks failed; keeping the hooks loaded before", zap.Error(err))
		}
		r.dyn.mu.Unlock()
	}
}

func (r *Runtime) reloadHooks(ctx context.Context) error {
	cfg := r.cfg.Load()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := r.store.Hooks(cfg.Secrets).HooksVersion(ctx)
	if err != nil {
		return err
	}
	r.dyn.mu.Lock()
	current := r.dyn.loaded && r.dyn.version == v && r.dyn.box == cfg.Secrets
	r.dyn.mu.Unlock()
	if current {
		return nil
	}
	if err := r.RefreshHooks(ctx); err != nil {
		return err
	}
	r.dyn.mu.Lock()
	r.dyn.lastErr = ""
	r.dyn.mu.Unlock()
	return nil
}

// withoutIDsOf returns d without the hooks whose id is in s.
func withoutIDsOf(d, s *webhook.HookSet) *webhook.HookSet {
	var keep []*webhook.Hook
	for _, h := range d.All() {
		if _, clash := s.Get(h.ID); !clash {
			keep = append(keep, h)
		}
	}
	out, err := webhook.NewHookSet(keep)
	if err != nil { // cannot happen: d's ids were unique
		return nil
	}
	return out
}
