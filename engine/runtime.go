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
	// Retry says when failed deliveries are tried again.
	Retry RetryPolicy
	// Health is the auto-disabling rule (DefaultHealthPolicy).
	Health redisstore.HealthPolicy
	// HookConcurrency caps one hook's deliveries in flight in this process,
	// so a slow receiver slows only itself; others' deliveries wait in the
	// schedule, not in a worker.
	HookConcurrency int
	// CallsPerMinute caps deliveries per top-level namespace, shared by all
	// processes (0: no limit). Over it, deliveries wait for the next minute.
	CallsPerMinute int
	// RecursionWindow is how long a chain (X-Gitlab-Event-UUID) remembers
	// the hooks it triggered; MaxChainHooks caps the hooks of one chain.
	RecursionWindow time.Duration
	MaxChainHooks   int
	// Silent stops all outgoing deliveries; they stay queued.
	Silent bool
	// MaxHandouts is how often a delivery may be handed to a consumer
	// (crashes included) before it is dead-lettered as poison.
	MaxHandouts int
	// Log bounds the delivery log of each hook (zero fields: defaults).
	Log LogPolicy
	// DeadLetters bound the dead-letter stream in entries and bytes (zero
	// fields: defaults); the oldest go first.
	DeadLetters redisstore.DeadLetterLimits
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
	case c.HookConcurrency < 1:
		return fmt.Errorf("hook concurrency must be at least 1, got %d", c.HookConcurrency)
	case c.CallsPerMinute < 0:
		return errors.New("calls per minute must not be negative")
	case c.RecursionWindow <= 0 || c.MaxChainHooks < 1:
		return errors.New("recursion window and max chain hooks must be positive")
	case c.MaxHandouts < 2:
		return fmt.Errorf("max handouts must be at least 2, got %d", c.MaxHandouts)
	case c.Health.Threshold < 1 || c.Health.Base <= 0 || c.Health.Max < c.Health.Base:
		return errors.New("health policy needs a positive threshold and backoffs")
	case c.DeadLetters.MaxEntries < 0 || c.DeadLetters.MaxBytes < 0:
		return errors.New("max dead letters and max dead-letter bytes must not be negative")
	}
	return c.Retry.Validate()
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

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc // stops the loops
	abort   context.CancelFunc // aborts in-flight deliveries
	loopCtx context.Context    // ended by cancel
	workCtx context.Context    // ended by abort
	// records bounds the Redis writes that record outcomes (settle, defer):
	// on Close they get settleGrace, not the whole grace, so a dead Redis
	// cannot hold up a shutdown or a config reload.
	records     context.Context
	stopRecords context.CancelFunc
	loops       sync.WaitGroup
	inflight    sync.WaitGroup
	busy        hookSlots
	disabled    disabledView  // hooks that may be disabled (admit.go)
	settling    chan struct{} // settles under way without a worker slot
	paused      atomic.Bool   // operator pause, shared through Redis
}

// NewRuntime builds a runtime; nothing runs until Start. consumer names this
// process in the consumer groups: keep it stable across restarts so a
// restarted process finds its own unfinished work first.
func NewRuntime(store *redisstore.Store, consumer string, log *zap.Logger) *Runtime {
	if log == nil {
		log = zap.NewNop()
	}
	records, stopRecords := context.WithCancel(context.Background())
	return &Runtime{store: store, consumer: consumer, log: log, sender: NewSender(), slots: newSlots(0),
		settling: make(chan struct{}, maxSettling), records: records, stopRecords: stopRecords}
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
	r.loopCtx, r.workCtx = ctx, work
	r.loops.Add(7)
	go r.secondLoop(ctx)
	go r.monitorLoop(ctx)
	go r.moverLoop(ctx)
	go r.hooksLoop(ctx)
	go r.fanoutLoop(ctx)
	go r.deliverLoop(ctx, work)
	go r.janitorLoop(ctx, work)
	runtimesRunning.Inc()
	workerSlots.Add(float64(r.slots.limitNow()))
	r.log.Info("webhook runtime started", zap.String("consumer", r.consumer), zap.Int("workers", r.slots.limitNow()))
	return nil
}

// settleGrace is how long, once Close is called, outcomes may still be
// recorded in Redis: plenty for a healthy Redis, and a bound for a dead one.
const settleGrace = time.Second

// recordCtx bounds one write that records an outcome.
func (r *Runtime) recordCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.records, 5*time.Second)
}

// Close stops reading, gives in-flight deliveries up to grace to finish,
// then aborts them (they stay pending in Redis and are delivered later) and
// closes the Redis clients. Outcomes not recorded within settleGrace stay
// pending too.
func (r *Runtime) Close(grace time.Duration) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	started := r.started
	r.mu.Unlock()
	stopRecords := time.AfterFunc(settleGrace, r.stopRecords)
	defer stopRecords.Stop()
	defer r.stopRecords()
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
	r.prepareEvent(ev) // image URLs (log.go)
	if _, err := r.store.AddEvent(ctx, ev); err != nil {
		return err // the caller spools it, or counts it lost
	}
	eventsCaptured.WithLabelValues(ev.Trigger).Inc()
	return nil
}

// maxSettling bounds the deliveries that settle after giving back their
// worker slot.
const maxSettling = 1024

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
// events from the events stream. A hook that the event's chain
// (X-Gitlab-Event-UUID) already triggered through another event is not
// triggered again: that is a webhook loop.
func (r *Runtime) fanOut(ctx context.Context, msgs []redisstore.EventMsg) error {
	hooks := r.hooks.Load()
	cfg := r.cfg.Load()
	ids := make([]string, 0, len(msgs))
	var ds []redisstore.Delivery
	var checks []redisstore.ChainCheck
	for i := range msgs {
		m := &msgs[i]
		ids = append(ids, m.StreamID)
		if m.Err != nil {
			eventsRejected.WithLabelValues("undecodable").Inc()
			r.log.Error("dropping undecodable event entry", zap.Error(m.Err))
			continue
		}
		matched := hooks.Match(&m.Event, nil)
		if len(matched) == 0 {
			continue
		}
		c := redisstore.ChainCheck{Chain: m.Event.Chain, EventID: m.Event.ID}
		for _, h := range matched {
			c.HookIDs = append(c.HookIDs, h.ID)
			ds = append(ds, redisstore.Delivery{
				EventID: m.Event.ID, HookID: h.ID, Trigger: m.Event.Trigger, Chain: m.Event.Chain,
				At: m.Event.At, Body: m.Event.Body, Attempt: 1,
			})
		}
		checks = append(checks, c)
		if c := r.log.Check(zap.DebugLevel, "event fanned out"); c != nil {
			c.Write(zap.String("event", m.Event.ID), zap.String("trigger", m.Event.Trigger),
				zap.String("project", m.Event.Project), zap.String("namespace", m.Event.Namespace),
				zap.Int("hooks", len(matched)))
		}
	}
	verdicts, err := r.store.CheckChains(ctx, checks, cfg.RecursionWindow, cfg.MaxChainHooks)
	if err != nil {
		return err
	}
	allowed := ds[:0]
	k := 0
	for _, vs := range verdicts {
		for _, v := range vs {
			d := ds[k]
			k++
			if v == redisstore.ChainAllowed {
				allowed = append(allowed, d)
				continue
			}
			reason := "recursive webhook blocked: the hook was already triggered in this chain"
			if v == redisstore.ChainTooLong {
				reason = "recursive webhook blocked: the chain triggered too many hooks"
			}
			deliveries.WithLabelValues("blocked").Inc()
			r.log.Warn(reason, zap.Int64("hook_id", d.HookID), zap.String("event", d.EventID),
				zap.String("event_uuid", d.Chain), zap.String("trigger", d.Trigger))
		}
	}
	if err := r.store.FanOut(ctx, ids, allowed); err != nil {
		return err
	}
	r.rememberLatest(ctx, msgs)
	return nil
}

// deliverLoop reads deliveries ahead of the workers: while one batch waits
// for free slots, the next is read, so a round trip to Redis never stands
// between a finished delivery and the next. At most two batches of Workers
// deliveries are held here; they stay pending in Redis until settled.
func (r *Runtime) deliverLoop(ctx, work context.Context) {
	defer r.loops.Done()
	batches := make(chan []redisstore.DeliveryMsg, 1)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for msgs := range batches {
			r.dispatch(ctx, work, msgs)
		}
	}()
	defer func() { close(batches); <-dispatched }()
	cursor := "0"
	var bo backoff
	for ctx.Err() == nil {
		if r.holding() { // everything stays queued
			sleep(ctx, time.Second)
			continue
		}
		msgs, err := r.store.ReadDeliveries(ctx, r.consumer, cursor, int64(r.slots.limitNow()), readBlock)
		if err != nil {
			r.retryAfter(ctx, &bo, "delivery", err)
			continue
		}
		bo.reset()
		if len(msgs) > 0 {
			select {
			case batches <- msgs:
			case <-ctx.Done():
				return
			}
		}
		cursor = advance(cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	}
}

// holding tells whether deliveries must stay queued: an operator pause
// (shared through Redis) or silent mode.
func (r *Runtime) holding() bool { return r.cfg.Load().Silent || r.paused.Load() }

// dispatch starts a delivery for each message, waiting for free slots, and
// while deliveries are paused. Messages it cannot start (shutdown) stay
// pending in Redis.
func (r *Runtime) dispatch(ctx, work context.Context, msgs []redisstore.DeliveryMsg) {
	for i := range msgs {
		for r.holding() && ctx.Err() == nil {
			sleep(ctx, 100*time.Millisecond) // read before the pause: held here
		}
		if err := r.slots.acquire(ctx); err != nil {
			return
		}
		r.inflight.Add(1)
		go func(m redisstore.DeliveryMsg) {
			defer r.inflight.Done()
			release := sync.OnceFunc(r.slots.release)
			defer release()
			r.deliver(work, &m, release)
		}(msgs[i])
	}
}

// parkedPerSlot is how many deliveries may wait in this process for each
// slot of a hook at its cap (at least two reads' worth of work may wait).
const parkedPerSlot = 4

// redispatch starts a parked delivery, whose hook has a free slot now.
// Called from a delivery in flight, so inflight cannot be waited on yet.
func (r *Runtime) redispatch(m redisstore.DeliveryMsg) {
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		r.dispatch(r.loopCtx, r.workCtx, []redisstore.DeliveryMsg{m})
	}()
}

// expireParked moves deliveries that waited too long for their hook to the
// schedule, before their lease runs out.
func (r *Runtime) expireParked(now time.Time) {
	for _, m := range r.busy.expired(now) {
		r.postpone(&m, now.Add(jitter(time.Second)), "saturated")
	}
}

// deliver makes one attempt (or finds it must wait) and settles the entry.
// Once the request is done, it calls release to give its worker slot to the
// next delivery while it settles, unless too many settles are under way
// (Redis is slow): then the slot waits, and so does reading more work.
func (r *Runtime) deliver(ctx context.Context, m *redisstore.DeliveryMsg, release func()) {
	d := &m.Delivery
	hook, ok := r.hooks.Load().Get(d.HookID)
	if m.Err != nil || !ok {
		deliveries.WithLabelValues("dropped").Inc()
		if m.Err != nil {
			r.log.Error("dropping undecodable delivery entry", zap.Error(m.Err))
		} else {
			r.log.Warn("dropping delivery: its hook no longer exists",
				zap.Int64("hook_id", d.HookID), zap.String("event", d.EventID))
		}
		r.settlePlain(m)
		return
	}
	cfg := r.cfg.Load()
	now := time.Now()
	if now.Sub(d.At) > cfg.Retry.MaxAge {
		r.giveUp(m, hook, "expired: waited longer than the max delivery age")
		return
	}
	// A hook at its concurrency cap does not take a worker from the others.
	// It waits here for a slot of its hook, or in the schedule when too
	// many already wait.
	maxParked := max(parkedPerSlot*cfg.HookConcurrency, 2*cfg.Workers) // what one read-ahead may bring
	acquired, parked := r.busy.acquireOrPark(hook.ID, cfg.HookConcurrency, m, maxParked, now.Add(cfg.Lease/4))
	if !acquired {
		if !parked {
			r.postpone(m, now.Add(jitter(time.Second)), "saturated")
		}
		return
	}
	releaseHook := sync.OnceFunc(func() {
		if next, ok := r.busy.release(hook.ID); ok {
			r.redispatch(next)
		}
	})
	defer releaseHook()
	var verdict int
	var until time.Time
	var err error
	if r.mustAdmit(cfg, hook, now) {
		verdict, until, err = r.store.Admit(ctx, hook.ID, topLevel(hook), cfg.CallsPerMinute, now)
	}
	switch {
	case err != nil:
		// Fail open: Redis trouble must not stop deliveries that may go.
		r.log.Warn("checking hook health failed; delivering anyway", zap.Int64("hook_id", hook.ID), zap.Error(err))
	case verdict == redisstore.HookDisabled:
		r.giveUp(m, hook, "hook disabled: re-enable it (a successful test does) and redrive")
		return
	case verdict == redisstore.HookCooling:
		// Beyond GitLab (which drops them): wait until the hook comes back.
		r.postpone(m, until.Add(jitter(2*time.Second)), "hook_disabled")
		return
	case verdict == redisstore.RateLimited:
		r.postpone(m, until.Add(jitter(5*time.Second)), "rate_limited")
		return
	}

	if d.Attempt == 1 {
		firstAttemptLatency.Observe(time.Since(d.At).Seconds())
	}
	res := r.sender.Send(ctx, &cfg.Send, hook, d.EventID, d.Chain, gitlab.Trigger(d.Trigger), d.Body)
	if ctx.Err() != nil {
		return // aborted by shutdown: leave it pending, it will be sent again
	}
	releaseHook()
	select {
	case r.settling <- struct{}{}:
		release()
		defer func() { <-r.settling }()
	default:
	}
	deliveries.WithLabelValues(res.Outcome()).Inc()
	deliveryDuration.Observe(res.Duration.Seconds())
	r.logResult(hook, d, &res)
	out := cfg.Retry.outcome(&res, d, time.Now())
	r.settle(m, hook, out, r.logEntry(LogDelivery, hook, d.EventID, d.Chain, d.Trigger, d.Body, &res))
}

// settle records an attempt's outcome, and the attempt in its hook's log
// when entry is set, in one round trip. A failure to record leaves the
// entry pending, so it is handed out again after the lease.
func (r *Runtime) settle(m *redisstore.DeliveryMsg, hook *Hook, out redisstore.Outcome, entry *redisstore.LogEntry) {
	cfg := r.cfg.Load()
	ctx, cancel := r.recordCtx()
	defer cancel()
	st, err := r.store.Settle(ctx, m.StreamID, &m.Delivery, out, cfg.Health, cfg.DeadLetters, time.Now(), entry, r.logLimits())
	if err != nil {
		r.log.Error("recording delivery outcome failed; it will be handed out again after the lease",
			zap.String("event", m.Delivery.EventID), zap.Int64("hook_id", hook.ID), zap.Error(err))
		return
	}
	r.disabled.note(hook.ID, st, out.Success)
	deadLettersTrimmed.WithLabelValues("count").Add(float64(st.TrimmedForCount))
	deadLettersTrimmed.WithLabelValues("bytes").Add(float64(st.TrimmedForBytes))
	if st.LogErr != nil {
		r.log.Warn("recording a delivery attempt in the hook's log failed", zap.Int64("hook_id", hook.ID),
			zap.String("event", m.Delivery.EventID), zap.String("kind", LogDelivery), zap.Error(st.LogErr))
	}
	switch {
	case out.Retry:
		deliveries.WithLabelValues("retry_scheduled").Inc()
	case !out.Success:
		deadLetters.WithLabelValues(deadReason(out)).Inc()
		r.log.Warn("delivery dead-lettered", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.String("event", m.Delivery.EventID), zap.String("reason", out.Reason))
	}
	if st.Disabled && out.Attempted && !out.Success {
		r.log.Warn("hook disabled until re-enabled", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.String("url", hook.MaskedURL()), zap.String("last_status", out.Status), zap.Int("failures", st.Fails))
	} else if !st.DisabledUntil.IsZero() {
		r.log.Warn("hook temporarily disabled", zap.Int64("hook_id", hook.ID), zap.String("hook", hook.Name),
			zap.Time("until", st.DisabledUntil), zap.Int("failures", st.Fails))
	}
}

// giveUp dead-letters a delivery without an attempt.
func (r *Runtime) giveUp(m *redisstore.DeliveryMsg, hook *Hook, reason string) {
	r.settle(m, hook, redisstore.Outcome{Reason: reason}, nil)
}

// postpone moves a delivery to the schedule without counting an attempt.
func (r *Runtime) postpone(m *redisstore.DeliveryMsg, due time.Time, why string) {
	sctx, cancel := r.recordCtx()
	defer cancel()
	if _, err := r.store.Defer(sctx, m.StreamID, &m.Delivery, due); err != nil {
		r.log.Warn("deferring delivery failed; it will be handed out again after the lease",
			zap.Int64("hook_id", m.Delivery.HookID), zap.Error(err))
		return
	}
	deferred.WithLabelValues(why).Inc()
}

// settlePlain acknowledges an entry that cannot be delivered at all.
func (r *Runtime) settlePlain(m *redisstore.DeliveryMsg) {
	ctx, cancel := r.recordCtx()
	defer cancel()
	if err := r.store.SettleDeliveries(ctx, m.StreamID); err != nil {
		r.log.Error("settling delivery failed", zap.String("entry", m.StreamID), zap.Error(err))
	}
}

// moverLoop puts scheduled deliveries back on the ready stream when due.
func (r *Runtime) moverLoop(ctx context.Context) {
	defer r.loops.Done()
	var bo backoff
	for ctx.Err() == nil {
		moved, next, err := r.store.MoveDue(ctx, time.Now(), 500)
		if err != nil {
			r.retryAfter(ctx, &bo, "schedule", err)
			continue
		}
		bo.reset()
		if moved == 500 {
			continue
		}
		wait := time.Second
		if !next.IsZero() {
			wait = min(max(time.Until(next), 5*time.Millisecond), time.Second)
		}
		sleep(ctx, wait)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
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
		if r.holding() {
			continue // claimed work would only wait, and its lease run out meanwhile
		}
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
			r.dispatch(ctx, work, r.withoutPoison(ctx, msgs))
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

// withoutPoison dead-letters claimed deliveries that were handed out too
// often (each time a consumer died or stalled with them): they would keep
// taking workers down.
func (r *Runtime) withoutPoison(ctx context.Context, msgs []redisstore.DeliveryMsg) []redisstore.DeliveryMsg {
	counts, err := r.store.DeliveryCounts(ctx, msgs[0].StreamID, msgs[len(msgs)-1].StreamID)
	if err != nil {
		r.log.Warn("reading delivery counts failed", zap.Error(err))
		return msgs
	}
	limit := int64(r.cfg.Load().MaxHandouts)
	keep := msgs[:0]
	for _, m := range msgs {
		hook, ok := r.hooks.Load().Get(m.Delivery.HookID)
		if counts[m.StreamID] <= limit || !ok || m.Err != nil {
			keep = append(keep, m)
			continue
		}
		r.giveUp(&m, hook, fmt.Sprintf("poison: handed out %d times without being settled", counts[m.StreamID]))
	}
	return keep
}
