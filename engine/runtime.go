package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
)

// Config is the part of the runtime's settings that may change on a reload.
type Config struct {
	Send SendConfig
	// Workers is how many deliveries may be in flight at once.
	Workers int
	// Lease is how long a delivery or event may stay with a consumer before
	// another may claim it; longer than Send.Timeout so a slow receiver's
	// delivery is not sent twice.
	Lease time.Duration
	// ClaimInterval is how often pending work of dead consumers is claimed.
	ClaimInterval time.Duration
	// Secrets opens the secrets of API-managed hooks; nil: no key.
	Secrets *secret.Box
}

// Validate checks the relations between settings.
func (c *Config) Validate() error {
	switch {
	case c.Workers < 1:
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	case c.Send.Timeout <= 0:
		return errors.New("timeout must be positive")
	case c.Lease <= c.Send.Timeout:
		return fmt.Errorf("lease (%s) must be longer than the delivery timeout (%s), or slow deliveries would be sent twice", c.Lease, c.Send.Timeout)
	case c.ClaimInterval <= 0:
		return errors.New("claim interval must be positive")
	case c.Send.MaxResponseBody < 0:
		return errors.New("max response body must not be negative")
	}
	return nil
}

// Runtime owns the workers of one Redis namespace: the fan-out loop that
// turns events into deliveries, the delivery loop, and the janitor that
// recovers work left by dead consumers. One Runtime serves every config
// generation that uses the same Redis, so reloads never double the workers.
type Runtime struct {
	store    *redisstore.Store
	consumer string
	log      *zap.Logger
	sender   *Sender

	cfg   atomic.Pointer[Config]
	hooks atomic.Pointer[HookSet] // static ∪ dynamic, what workers use
	slots *slots

	hooksMu sync.Mutex
	static  *HookSet // from configuration
	dynamic *HookSet // managed through the API, loaded from Redis
	dyn     dynamicState

	mu       sync.Mutex
	started  bool
	closed   bool
	cancel   context.CancelFunc // stops the loops
	abort    context.CancelFunc // aborts in-flight deliveries
	loops    sync.WaitGroup
	inflight sync.WaitGroup
}

// NewRuntime builds a runtime; nothing runs until Start. consumer names this
// process in the consumer groups: keep it stable across restarts so a
// restarted process finds its own unfinished work first.
func NewRuntime(store *redisstore.Store, consumer string, log *zap.Logger) *Runtime {
	if log == nil {
		log = zap.NewNop()
	}
	return &Runtime{store: store, consumer: consumer, log: log, sender: NewSender(), slots: newSlots(0)}
}

// Store returns the runtime's store.
func (r *Runtime) Store() *redisstore.Store { return r.store }

// Configure swaps in new settings and configured hooks; running loops pick
// them up.
func (r *Runtime) Configure(cfg Config, static *HookSet) {
	r.cfg.Store(&cfg)
	r.setHooks(&static, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started && !r.closed {
		workerSlots.Add(float64(cfg.Workers - r.slots.limitNow()))
	}
	r.slots.setLimit(cfg.Workers)
}

// Hooks returns the hooks in effect.
func (r *Runtime) Hooks() *HookSet { return r.hooks.Load() }

// SetDynamicHooks replaces the hooks managed through the API. Their IDs must
// not collide with configured hooks' IDs.
func (r *Runtime) SetDynamicHooks(dynamic *HookSet) error {
	return r.setHooks(nil, &dynamic)
}

// setHooks replaces the static or the dynamic set (nil pointer: keep) and
// publishes their union.
func (r *Runtime) setHooks(static, dynamic **HookSet) error {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	s, d := r.static, r.dynamic
	if static != nil {
		s = *static
	}
	if dynamic != nil {
		d = *dynamic
	}
	merged, err := MergeHookSets(s, d)
	if err != nil && static != nil {
		// Configuration wins over API-managed hooks with the same id.
		d = withoutIDsOf(d, s)
		merged, err = MergeHookSets(s, d)
	}
	if err != nil {
		return err
	}
	r.static, r.dynamic = s, d
	r.hooks.Store(merged)
	return nil
}

// Start launches the loops once; later calls do nothing. Redis need not be
// up: the loops retry until it is.
func (r *Runtime) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("runtime is closed")
	}
	if r.cfg.Load() == nil {
		return errors.New("runtime started before it was configured")
	}
	if err := r.checkStoredHooks(); err != nil {
		return err
	}
	if r.started {
		return nil
	}
	r.started = true
	ctx, cancel := context.WithCancel(context.Background())
	work, abort := context.WithCancel(context.Background())
	r.cancel, r.abort = cancel, abort
	r.loops.Add(4)
	go r.hooksLoop(ctx)
	go r.fanoutLoop(ctx)
	go r.deliverLoop(ctx, work)
	go r.janitorLoop(ctx, work)
	runtimesRunning.Inc()
	workerSlots.Add(float64(r.slots.limitNow()))
	r.log.Info("webhook runtime started", zap.String("consumer", r.consumer), zap.Int("workers", r.slots.limitNow()))
	return nil
}

// Close stops reading, gives in-flight deliveries up to grace to finish,
// then aborts them (they stay pending in Redis and are delivered later) and
// closes the Redis clients.
func (r *Runtime) Close(grace time.Duration) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	started := r.started
	r.mu.Unlock()
	if started {
		r.cancel()
		r.loops.Wait()
		done := make(chan struct{})
		go func() { r.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			r.abort()
			<-done
		}
		r.abort()
		runtimesRunning.Dec()
		workerSlots.Sub(float64(r.slots.limitNow()))
		r.log.Info("webhook runtime stopped", zap.String("consumer", r.consumer))
	}
	r.sender.CloseIdle()
	return r.store.Close()
}

// Enqueue makes an event durable in Redis; once it returns nil the event
// will be delivered to every matching hook.
func (r *Runtime) Enqueue(ctx context.Context, ev *Event) error {
	if _, err := r.store.AddEvent(ctx, ev); err != nil {
		eventsRejected.WithLabelValues("enqueue_failed").Inc()
		return err
	}
	eventsCaptured.WithLabelValues(ev.Trigger).Inc()
	return nil
}

// readBlock bounds blocking reads so loops notice shutdown promptly even if
// a read is not interrupted.
const readBlock = 2 * time.Second

func (r *Runtime) fanoutLoop(ctx context.Context) {
	defer r.loops.Done()
	cursor := "0" // our own unfinished events first (after a crash)
	var bo backoff
	for ctx.Err() == nil {
		msgs, err := r.store.ReadEvents(ctx, r.consumer, cursor, 128, readBlock)
		if err == nil && len(msgs) > 0 {
			err = r.fanOut(ctx, msgs)
		}
		if err != nil {
			r.retryAfter(ctx, &bo, "fan-out", err)
			continue
		}
		bo.reset()
		cursor = advance(cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	}
}

// advance moves a read cursor: paging through our own pending entries
// until there are none, then ">" for new ones.
func advance(cursor string, n int, last func() string) string {
	if cursor == ">" {
		return cursor
	}
	if n == 0 {
		return ">"
	}
	return last()
}

// fanOut queues one delivery per matching hook for each event, then drops the
// events from the events stream.
func (r *Runtime) fanOut(ctx context.Context, msgs []redisstore.EventMsg) error {
	hooks := r.hooks.Load()
	ids := make([]string, 0, len(msgs))
	var ds []redisstore.Delivery
	var matched []*Hook
	for i := range msgs {
		m := &msgs[i]
		ids = append(ids, m.StreamID)
		if m.Err != nil {
			eventsRejected.WithLabelValues("undecodable").Inc()
			r.log.Error("dropping undecodable event entry", zap.Error(m.Err))
			continue
		}
		matched = hooks.Match(&m.Event, matched[:0])
		for _, h := range matched {
			ds = append(ds, redisstore.Delivery{
				EventID: m.Event.ID, HookID: h.ID, Trigger: m.Event.Trigger, Chain: m.Event.Chain,
				At: m.Event.At, Body: m.Event.Body, Attempt: 1,
			})
		}
		if c := r.log.Check(zap.DebugLevel, "event fanned out"); c != nil {
			c.Write(zap.String("event", m.Event.ID), zap.String("trigger", m.Event.Trigger),
				zap.String("project", m.Event.Project), zap.String("namespace", m.Event.Namespace),
				zap.Int("hooks", len(matched)))
		}
	}
	return r.store.FanOut(ctx, ids, ds)
}

func (r *Runtime) deliverLoop(ctx, work context.Context) {
	defer r.loops.Done()
	cursor := "0"
	var bo backoff
	for ctx.Err() == nil {
		r.slots.waitFree(ctx)
		n := r.slots.available()
		if n == 0 {
			continue
		}
		msgs, err := r.store.ReadDeliveries(ctx, r.consumer, cursor, int64(n), readBlock)
		if err != nil {
			r.retryAfter(ctx, &bo, "delivery", err)
			continue
		}
		bo.reset()
		r.dispatch(ctx, work, msgs)
		cursor = advance(cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	}
}

// dispatch starts a delivery for each message, waiting for free slots.
// Messages it cannot start (shutdown) stay pending in Redis.
func (r *Runtime) dispatch(ctx, work context.Context, msgs []redisstore.DeliveryMsg) {
	for i := range msgs {
		if err := r.slots.acquire(ctx); err != nil {
			return
		}
		r.inflight.Add(1)
		go func(m redisstore.DeliveryMsg) {
			defer r.inflight.Done()
			defer r.slots.release()
			r.deliver(work, &m)
		}(msgs[i])
	}
}

// deliver makes one attempt and settles the entry.
func (r *Runtime) deliver(ctx context.Context, m *redisstore.DeliveryMsg) {
	d := &m.Delivery
	hook, ok := r.hooks.Load().Get(d.HookID)
	switch {
	case m.Err != nil:
		deliveries.WithLabelValues("dropped").Inc()
		r.log.Error("dropping undecodable delivery entry", zap.Error(m.Err))
	case !ok:
		deliveries.WithLabelValues("dropped").Inc()
		r.log.Warn("dropping delivery: its hook no longer exists",
			zap.Int64("hook_id", d.HookID), zap.String("event", d.EventID))
	default:
		cfg := r.cfg.Load()
		res := r.sender.Send(ctx, &cfg.Send, hook, d.EventID, d.Chain, gitlab.Trigger(d.Trigger), d.Body)
		if ctx.Err() != nil {
			return // aborted by shutdown: leave it pending, it will be sent again
		}
		deliveries.WithLabelValues(res.Outcome()).Inc()
		deliveryDuration.Observe(res.Duration.Seconds())
		r.logResult(hook, d, &res)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.store.SettleDeliveries(sctx, m.StreamID); err != nil {
		// Stays pending: the janitor hands it out again after the lease.
		r.log.Error("settling delivery failed; it will be retried after the lease",
			zap.String("event", d.EventID), zap.Int64("hook_id", d.HookID), zap.Error(err))
	}
}

func (r *Runtime) logResult(h *Hook, d *redisstore.Delivery, res *Result) {
	fields := []zap.Field{
		zap.Int64("hook_id", h.ID), zap.String("hook", h.Name), zap.String("url", h.MaskedURL()),
		zap.String("trigger", d.Trigger), zap.String("event", d.EventID),
		zap.Int("status", res.Status), zap.Duration("duration", res.Duration),
		zap.Duration("latency", time.Since(d.At)),
	}
	if res.Success() {
		if c := r.log.Check(zap.DebugLevel, "webhook delivered"); c != nil {
			c.Write(fields...)
		}
		return
	}
	if res.Err != nil {
		fields = append(fields, zap.String("error", res.Err.Error()))
	}
	r.log.Warn("webhook delivery failed", fields...)
}

// janitorLoop claims work that another consumer (a crashed or stopped
// process) left pending for longer than the lease.
func (r *Runtime) janitorLoop(ctx, work context.Context) {
	defer r.loops.Done()
	t := time.NewTicker(r.cfg.Load().ClaimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cfg := r.cfg.Load()
		t.Reset(cfg.ClaimInterval)
		if err := r.claimAll(ctx, work, cfg.Lease); err != nil && ctx.Err() == nil {
			r.log.Warn("claiming abandoned work failed", zap.Error(err))
		}
	}
}

func (r *Runtime) claimAll(ctx, work context.Context, lease time.Duration) error {
	for start := "0-0"; ; {
		msgs, next, err := r.store.ClaimEvents(ctx, r.consumer, lease, start, 100)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			r.log.Info("claimed abandoned events", zap.Int("count", len(msgs)))
			if err := r.fanOut(ctx, msgs); err != nil {
				return err
			}
		}
		if start = next; start == "0-0" {
			break
		}
	}
	for start := "0-0"; ; {
		msgs, next, err := r.store.ClaimDeliveries(ctx, r.consumer, lease, start, 100)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			r.log.Info("claimed abandoned deliveries", zap.Int("count", len(msgs)))
			r.dispatch(ctx, work, msgs)
		}
		if start = next; start == "0-0" {
			return nil
		}
	}
}

func (r *Runtime) retryAfter(ctx context.Context, bo *backoff, loop string, err error) {
	if ctx.Err() != nil {
		return
	}
	d := bo.next()
	r.log.Warn("redis error; retrying", zap.String("loop", loop), zap.Duration("in", d), zap.Error(err))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// backoff doubles from 100ms to 5s.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(b.d*2, 100*time.Millisecond), 5*time.Second)
	return b.d
}

func (b *backoff) reset() { b.d = 0 }
