package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/alerts"
	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/fanout"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/ordered"
	"github.com/grt-continuation/caddy-webhooks/engine/recovery"
	"github.com/grt-continuation/caddy-webhooks/engine/replay"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Config is the part of the runtime's settings that may change on a reload.
type Config struct {
	Send delivery.SendConfig
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
	Retry delivery.RetryPolicy
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
	Log hooklog.Policy
	// DeadLetters bound the dead-letter stream in entries and bytes (zero
	// fields: defaults); the oldest go first.
	DeadLetters redisstore.DeadLetterLimits
	// Alerts are the operator's alerts' settings (zero fields: defaults);
	// the endpoints are the hooks marked Operator.
	Alerts alerts.Config
	// ReplayRate is how many deliveries a second replays feed at most (0:
	// replay.DefaultRate); they also wait while a quarter of the workers'
	// worth of deliveries (2 to 8) is ready.
	ReplayRate int
}

// delivery is the part of the settings deliveries follow.
func (c *Config) delivery() delivery.Config {
	return delivery.Config{Send: c.Send, Workers: c.Workers, Lease: c.Lease, Retry: c.Retry, Health: c.Health,
		HookConcurrency: c.HookConcurrency, CallsPerMinute: c.CallsPerMinute, Silent: c.Silent, DeadLetters: c.DeadLetters}
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
	case c.Health.Mode != "" && c.Health.Mode != webhook.AutoDisableGitLab && c.Health.Mode != webhook.AutoDisableOff &&
		(c.Health.Mode != webhook.AutoDisablePermanentAfter || c.Health.PermanentAfter < 2):
		return fmt.Errorf("auto_disable %q is not gitlab, off or permanent_after <n> (n at least 2)", c.Health.Mode)
	case c.ReplayRate < 0:
		return errors.New("replay rate must not be negative")
	case c.DeadLetters.MaxEntries < 0 || c.DeadLetters.MaxBytes < 0:
		return errors.New("max dead letters and max dead-letter bytes must not be negative")
	}
	return c.Retry.Validate()
}

// Runtime owns the workers of one Redis namespace: it holds the
// configuration and the hooks in effect, starts and stops the loops, and
// wires the rooms that do the work: fan-out (events into deliveries),
// delivery (sending and settling), recovery (the schedule mover, the
// janitor) and the hook log. One Runtime serves every config generation
// that uses the same Redis, so reloads never double the workers.
type Runtime struct {
	store    *redisstore.Store
	consumer string
	log      *zap.Logger

	fan      *fanout.Fanout
	deliver  *delivery.Deliverer
	recovery *recovery.Recovery
	ordered  *ordered.Queues // ordered hooks (engine/ordered)
	replay   *replay.Replayer
	alerts   *alerts.Alerter
	hookLog  *hooklog.Log
	outage   *outage        // Redis known to be down (outage.go)
	spans    *tracing.Spans // events' spans, in Caddy's tracer provider

	cfg   atomic.Pointer[Config]
	hooks atomic.Pointer[webhook.HookSet] // static ∪ dynamic, what workers use

	hooksMu sync.Mutex
	static  *webhook.HookSet // from configuration
	dynamic *webhook.HookSet // managed through the API, loaded from Redis
	dyn     dynamicState

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc // stops the loops
	abort   context.CancelFunc // aborts in-flight deliveries
	loops   sync.WaitGroup
}

// NewRuntime builds a runtime; nothing runs until Start. consumer names this
// process in the consumer groups: keep it stable across restarts so a
// restarted process finds its own unfinished work first.
func NewRuntime(store *redisstore.Store, consumer string, log *zap.Logger) *Runtime {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Runtime{store: store, consumer: consumer, log: log, spans: new(tracing.Spans)}
	r.hookLog = hooklog.New(store.Log())
	r.deliver = delivery.New(delivery.Store{Queue: store.Queue(), Health: store.Health(), Legacy: store.Legacy()},
		consumer, log, r.Hooks, r.hookLog, r.spans)
	r.fan = fanout.New(fanout.Store{Queue: store.Queue(), Samples: store.Samples()}, consumer, log, r.Hooks, r.deliver, r.spans)
	r.recovery = recovery.New(recovery.Store{Queue: store.Queue(), DeadLetters: store.DeadLetters(), Log: store.Log(),
		Legacy: store.Legacy()}, consumer, log, r.Hooks, r.fan, r.deliver)
	r.ordered = ordered.New(store.Ordered(), consumer, log.Named("ordered"), r.Hooks, r.deliver)
	r.deliver.SetOrdered(r.ordered)
	r.replay = replay.New(replay.Store{Replays: store.Replays(), DeadLetters: store.DeadLetters(), Queue: store.Queue(),
		Control: store.Control()}, r.hookLog, r.Hooks, consumer, log.Named("replay"))
	r.alerts = alerts.New(alerts.Store{Queue: store.Queue(), Alerts: store.Alerts()}, r.Hooks, consumer, r.deliver,
		log.Named("alerts"))
	r.deliver.SetAlerts(r.alerts)
	r.outage = newOutage(store, log)
	r.outage.notify = r.alerts.RedisOutage
	return r
}

// Configure swaps in new settings and configured hooks; running loops pick
// them up.
func (r *Runtime) Configure(cfg Config, static *webhook.HookSet) {
	r.cfg.Store(&cfg)
	r.setHooks(&static, nil)
	r.fan.Configure(fanout.Config{RecursionWindow: cfg.RecursionWindow, MaxChainHooks: cfg.MaxChainHooks})
	r.hookLog.Configure(cfg.Log)
	r.recovery.Configure(recovery.Config{Lease: cfg.Lease, ClaimInterval: cfg.ClaimInterval, MaxHandouts: cfg.MaxHandouts,
		Log: r.hookLog.Limits()})
	ac := cfg.Alerts
	ac.Namespace = r.store.Keys().Namespace
	r.alerts.Configure(ac)
	r.replay.Configure(replay.Config{Rate: cfg.ReplayRate, Depth: min(max(cfg.Workers/4, 2), 8), LogRetention: r.hookLog.Limits().Retention})
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.deliver.Configure(cfg.delivery())
	if r.started && !r.closed {
		metrics.WorkerSlots.Add(float64(cfg.Workers - before))
	}
}

// Hooks returns the hooks in effect.
func (r *Runtime) Hooks() *webhook.HookSet { return r.hooks.Load() }

// SetDynamicHooks replaces the hooks managed through the API. Their IDs must
// not collide with configured hooks' IDs.
func (r *Runtime) SetDynamicHooks(dynamic *webhook.HookSet) error {
	return r.setHooks(nil, &dynamic)
}

// setHooks replaces the static or the dynamic set (nil pointer: keep) and
// publishes their union.
func (r *Runtime) setHooks(static, dynamic **webhook.HookSet) error {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	s, d := r.static, r.dynamic
	if static != nil {
		s = *static
	}
	if dynamic != nil {
		d = *dynamic
	}
	merged, err := webhook.MergeHookSets(s, d)
	if err != nil && static != nil {
		// Configuration wins over API-managed hooks with the same id.
		d = withoutIDsOf(d, s)
		merged, err = webhook.MergeHookSets(s, d)
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
	r.deliver.Start(ctx, work)
	for shard := range r.store.Queue().Shards() {
		r.loop(ctx, "fan-out", 0, func(ctx context.Context) (time.Duration, error) { return r.fan.Step(ctx, shard) })
		r.loop(ctx, "delivery", 0, func(ctx context.Context) (time.Duration, error) { return r.deliver.ReadStep(ctx, shard) })
	}
	r.loop(ctx, "fan-out hand-off", 0, r.fan.HandStep)
	r.loop(ctx, "schedule", 0, r.recovery.MoveStep)
	// The janitor's first step is at once: it moves the work and health a
	// Redis written by an older version holds.
	r.loop(ctx, "janitor", 0, func(ctx context.Context) (time.Duration, error) {
		return r.recovery.ClaimStep(ctx, work)
	})
	r.loop(ctx, "disabled hooks", 0, every(delivery.DisabledInterval, r.deliver.Refresh))
	r.loop(ctx, "monitor", 0, every(monitorInterval, r.monitor))
	r.ordered.Start(ctx, work)
	r.loop(ctx, "capture mark", 0, r.ordered.MarkStep)
	r.loop(ctx, "ordered hooks", 0, r.ordered.Step)
	r.loop(ctx, "replays", 0, r.replay.Step)
	r.loop(ctx, "alerts", 0, r.alerts.Step)
	r.loop(ctx, "hooks", HookPollInterval, every(HookPollInterval, r.pollHooks))
	metrics.RuntimesRunning.Inc()
	metrics.WorkerSlots.Add(float64(r.deliver.Workers()))
	r.log.Info("webhook runtime started", zap.String("consumer", r.consumer), zap.Int("workers", r.deliver.Workers()))
	return nil
}

// Close stops reading, gives in-flight deliveries up to grace to finish,
// then aborts them (they stay pending in Redis and are delivered later) and
// closes the Redis clients. Outcomes not recorded within a second stay
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
	defer r.deliver.Close()()
	r.outage.close()
	if started {
		r.cancel()
		// The loops' blocked reads end now, not at their timeout. In the
		// background: with Sentinel down, closing a client can wait for a
		// dial of its own.
		go func() { _ = r.store.EndReads() }()
		r.loops.Wait()
		r.deliver.StopReading()
		end := time.Now().Add(grace)
		r.deliver.Wait(grace, r.abort)
		waitOr(r.ordered.Wait, time.Until(end), r.abort)
		r.abort()
		metrics.RuntimesRunning.Dec()
		metrics.WorkerSlots.Sub(float64(r.deliver.Workers()))
		r.log.Info("webhook runtime stopped", zap.String("consumer", r.consumer))
	}
	return r.store.Close()
}

// Enqueue makes an event durable in Redis; once it returns nil the event
// will be delivered to every matching hook. Relative image URLs in its
// Markdown fields become absolute first, as GitLab's payloads have them (no
// I/O: this is on the client's response path). While Redis is known to be
// unreachable and the callers have a spool (SetFailover), it returns
// ErrRedisDown at once, without trying. Under a span of a trace (Caddy's
// tracing handler ran before the caller), the enqueue is a span of its
// own, whose context the event keeps, spooled or not.
func (r *Runtime) Enqueue(ctx context.Context, ev *webhook.Event) error {
	c := r.ordered.Captures.Begin(ev.At) // until Redis has it (ordered hooks)
	span := r.spans.Enqueue(ctx, ev)
	var err error
	if r.outage.refusing() {
		r.outage.refuse()
		err = ErrRedisDown
	} else {
		err = r.enqueue(ctx, ev)
	}
	tracing.End(span, err)
	r.ordered.Captures.End(c, err != nil, time.Now())
	return err
}

// Capturing counts events captured from at on (built, not yet enqueued)
// until done is called, for the ordered hooks' watermark: callers that
// build many events before they enqueue them (a batch) call it first.
func (r *Runtime) Capturing(at time.Time) (done func()) {
	c := r.ordered.Captures.Begin(at)
	return func() { r.ordered.Captures.End(c, false, time.Now()) }
}

// Replay is Enqueue for the spool's replayer: while Redis is known to be
// down it fails at once too, but the event, already spooled, is not
// counted as skipped.
func (r *Runtime) Replay(ctx context.Context, ev *webhook.Event) error {
	if r.outage.refusing() {
		return ErrRedisDown
	}
	return r.enqueue(ctx, ev)
}

func (r *Runtime) enqueue(ctx context.Context, ev *webhook.Event) error {
	if cfg := r.cfg.Load(); cfg != nil && ev.Project != "" {
		ev.Body = gitlab.RewriteImageURLs(ev.Body, cfg.Send.Instance, ev.Project)
	}
	var err error
	if r.fan.Running() && r.dyn.ready.Load() {
		// Fanned out at once, in the capture's own call (fanout.Capture).
		err = r.fan.Capture(ctx, ev)
	} else {
		// For the fan-out to read; an idle one takes it at once
		// (fanout/inbox.go).
		consumer := ""
		if r.fan.Accepting() {
			consumer = r.consumer
		}
		var taken *redisstore.EventMsg
		_, taken, err = r.store.Queue().AddEventFor(ctx, ev, consumer)
		if taken != nil {
			r.fan.Hand(*taken)
		}
	}
	if err != nil {
		r.outage.failed(err)
		return err // the caller spools it, or counts it lost
	}
	metrics.EventsCaptured.WithLabelValues(ev.Trigger).Inc()
	return nil
}

// SetFailover says what Enqueue's callers do with the events Redis cannot
// take; a config generation sets it as it starts.
func (r *Runtime) SetFailover(f Failover) {
	r.outage.setFailover(f)
	r.ordered.SetSpooled(f.Oldest)
}

// RedisDown tells whether Enqueue fails at once now: Redis was found
// unreachable and the callers have a spool. Callers that use Redis
// themselves before Enqueue need not wait for it either.
func (r *Runtime) RedisDown() bool { return r.outage.refusing() }

// RedisFailed reports the error of a caller's own Redis call on the
// enqueue path: one that says Redis is unreachable starts an outage, as a
// failed Enqueue does.
func (r *Runtime) RedisFailed(err error) { r.outage.failed(err) }
