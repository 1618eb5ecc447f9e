package delivery

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Config is the part of the runtime's settings deliveries follow.
type Config struct {
	Send    SendConfig
	Workers int
	// Lease is how long a delivery may stay with a consumer before another
	// may claim it.
	Lease  time.Duration
	Retry  RetryPolicy
	Health redisstore.HealthPolicy
	// HookConcurrency caps one hook's deliveries in flight in this process.
	HookConcurrency int
	// CallsPerMinute caps deliveries per top-level namespace (0: no limit).
	CallsPerMinute int
	// Silent stops all outgoing deliveries; they stay queued.
	Silent bool
	// DeadLetters bound the dead-letter stream in entries and bytes (zero
	// fields: defaults); the oldest go first.
	DeadLetters redisstore.DeadLetterLimits
}

// Store is what deliveries read and write in Redis.
type Store struct {
	Queue  *redisstore.Queue
	Health *redisstore.Health
	// Legacy moves the health the layout before shards kept.
	Legacy *redisstore.Legacy
}

// Deliverer sends the queued deliveries of one runtime: it reads them ahead
// of the workers, gives each a worker slot and a slot of its hook (parking
// it in the process while its hook is at its cap), sends it, and settles
// the outcome (success, retry, dead letter, the hook's health).
type Deliverer struct {
	store    Store
	consumer string
	log      *zap.Logger
	hooks    func() *webhook.HookSet
	record   *hooklog.Log
	sender   *Sender
	ordered  OrderedQueue // ordered hooks' queues (ordered.go); nil: none
	alerts   Alerts       // the operator's alerts (alerts.go); nil: none

	cfg      atomic.Pointer[Config]
	slots    *slots
	busy     hookSlots
	disabled disabledView  // hooks that may be disabled (admit.go)
	settling chan struct{} // settles under way without a worker slot
	paused   atomic.Bool   // operator pause, shared through Redis
	viewed   atomic.Bool   // the disabled hooks were read once (admit.go)
	inflight sync.WaitGroup

	loopCtx context.Context // ended when the loops stop
	workCtx context.Context // ended to abort deliveries in flight
	// records bounds the Redis writes that record outcomes (settle, defer):
	// on Close they get a short grace, not the whole one, so a dead Redis
	// cannot hold up a shutdown or a config reload.
	records     context.Context
	stopRecords context.CancelFunc

	cursors []string // per shard
	// rereading counts the shards whose cursor still pages through this
	// consumer's own pending entries (after a restart): until it is 0,
	// nothing is taken from the fan-out, which such a page could hold too.
	rereading  atomic.Int32
	running    atomic.Bool // between Start and the end of the loops
	batches    chan []redisstore.DeliveryMsg
	dispatched chan struct{}
}

// New builds a deliverer; hooks returns the hooks in effect, record is the
// hook log its attempts go to, spans records them in their events' traces.
// Nothing runs until Start.
func New(store Store, consumer string, log *zap.Logger, hooks func() *webhook.HookSet, record *hooklog.Log, spans *tracing.Spans) *Deliverer {
	records, stopRecords := context.WithCancel(context.Background())
	return &Deliverer{store: store, consumer: consumer, log: log, hooks: hooks, record: record, sender: &Sender{spans: spans},
		slots: newSlots(0), settling: make(chan struct{}, maxSettling), records: records, stopRecords: stopRecords}
}

// Configure swaps in new settings; it returns the worker limit before.
func (d *Deliverer) Configure(c Config) (before int) {
	before = d.slots.limitNow()
	d.cfg.Store(&c)
	d.slots.setLimit(c.Workers)
	return before
}

// Workers is the number of deliveries allowed in flight.
func (d *Deliverer) Workers() int { return d.slots.limitNow() }

// maxSettling bounds the deliveries that settle after giving back their
// worker slot.
const maxSettling = 1024

// readBlock bounds blocking reads so loops notice shutdown promptly even if
// a read is not interrupted.
const readBlock = 5 * time.Second

// Start begins dispatching what ReadStep reads: ctx ends reading, work
// aborts deliveries in flight.
func (d *Deliverer) Start(ctx, work context.Context) {
	d.loopCtx, d.workCtx = ctx, work
	d.cursors = make([]string, d.store.Queue.Shards())
	for i := range d.cursors {
		d.cursors[i] = "0" // our own unfinished deliveries first (after a crash)
	}
	d.rereading.Store(int32(len(d.cursors)))
	d.batches = make(chan []redisstore.DeliveryMsg, 1)
	d.dispatched = make(chan struct{})
	go func() {
		defer close(d.dispatched)
		for msgs := range d.batches {
			d.Dispatch(ctx, work, msgs)
		}
	}()
	d.running.Store(true)
}

// ReadStep reads deliveries of a shard ahead of the workers: while one
// batch waits for free slots, the next is read, so a round trip to Redis
// never stands between a finished delivery and the next. The runtime runs
// it in a loop per shard; the shards' batches queue for the workers in
// turn, so one shard's backlog cannot starve another. They stay pending in
// Redis until settled. It returns how long to wait before the next read.
func (d *Deliverer) ReadStep(ctx context.Context, shard int) (time.Duration, error) {
	if d.Holding() { // everything stays queued
		if !d.viewed.Load() {
			return 20 * time.Millisecond, nil // starting: the first read of disabled hooks is under way
		}
		return time.Second, nil
	}
	cursor := d.cursors[shard]
	// Each shard reads its share of the workers, so the deliveries held
	// here (read, not yet started) stay about two batches of Workers.
	count := max(d.slots.limitNow()/len(d.cursors), 1)
	msgs, err := d.store.Queue.ReadDeliveries(ctx, shard, d.consumer, cursor, int64(count), readBlock)
	if err != nil {
		return 0, err
	}
	if len(msgs) > 0 {
		select {
		case d.batches <- msgs:
		case <-ctx.Done():
			return 0, nil
		}
	}
	next := redisstore.Advance(cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	if cursor != ">" && next == ">" {
		d.rereading.Add(-1)
	}
	d.cursors[shard] = next
	return 0, nil
}

// Room is how many deliveries could start at once now (the fan-out hands
// over that many): the free worker slots, while the loops run, once the
// pending entries of a previous run were read back, and while deliveries
// are not held.
func (d *Deliverer) Room() int {
	if !d.running.Load() || d.loopCtx.Err() != nil || d.rereading.Load() > 0 || d.Holding() {
		return 0
	}
	return d.slots.room()
}

// Take starts deliveries the fan-out took for this process: each at once
// while a worker slot is free, the rest as Dispatch does, without holding
// up the fan-out.
func (d *Deliverer) Take(msgs []redisstore.DeliveryMsg) {
	for i := range msgs {
		if d.Holding() || !d.slots.tryAcquire() {
			rest := msgs[i:]
			d.inflight.Add(1)
			go func() {
				defer d.inflight.Done()
				d.Dispatch(d.loopCtx, d.workCtx, rest)
			}()
			return
		}
		d.start(d.workCtx, msgs[i])
	}
}

// StopReading waits for the batches read so far to be dispatched (or
// dropped: they stay pending in Redis); call it once ReadStep's loop ended.
func (d *Deliverer) StopReading() {
	d.running.Store(false)
	close(d.batches)
	<-d.dispatched
}

// Wait waits for the deliveries in flight, up to grace; then it aborts
// them (they stay pending in Redis and are delivered later) with abort.
func (d *Deliverer) Wait(grace time.Duration, abort func()) {
	done := make(chan struct{})
	go func() { d.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		abort()
		<-done
	}
}

// settleGrace is how long, once Close is called, outcomes may still be
// recorded in Redis: plenty for a healthy Redis, and a bound for a dead one.
const settleGrace = time.Second

// Close ends the recording of outcomes, settleGrace from now; stop (call
// it once the deliveries are done) ends it at once.
func (d *Deliverer) Close() (stop func()) {
	t := time.AfterFunc(settleGrace, d.stopRecords)
	return func() { t.Stop(); d.stopRecords(); d.sender.CloseIdle() }
}

// recordCtx bounds one write that records an outcome.
func (d *Deliverer) recordCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.records, 5*time.Second)
}

// Holding tells whether deliveries must stay queued: an operator pause
// (shared through Redis), silent mode, or the disabled hooks not read yet.
func (d *Deliverer) Holding() bool {
	return d.cfg.Load().Silent || d.paused.Load() || !d.viewed.Load()
}

// SetPaused records the operator pause; it reports whether it changed.
func (d *Deliverer) SetPaused(p bool) (changed bool) { return d.paused.Swap(p) != p }

// Paused tells whether an operator paused deliveries.
func (d *Deliverer) Paused() bool { return d.paused.Load() }

// Dispatch starts a delivery for each message, waiting for free slots, and
// while deliveries are paused. Messages it cannot start (shutdown) stay
// pending in Redis.
func (d *Deliverer) Dispatch(ctx, work context.Context, msgs []redisstore.DeliveryMsg) {
	for i := range msgs {
		for d.Holding() && ctx.Err() == nil {
			sleep(ctx, 100*time.Millisecond) // read before the pause: held here
		}
		if err := d.slots.acquire(ctx); err != nil {
			return
		}
		d.start(work, msgs[i])
	}
}

// start delivers m with the worker slot it was given.
func (d *Deliverer) start(work context.Context, m redisstore.DeliveryMsg) {
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		release := sync.OnceFunc(d.slots.release)
		defer release()
		d.deliver(work, &m, release)
	}()
}

// parkedPerSlot is how many deliveries may wait in this process for each
// slot of a hook at its cap (at least two reads' worth of work may wait).
const parkedPerSlot = 4

// redispatch starts a parked delivery, whose hook has a free slot now.
// Called from a delivery in flight, so inflight cannot be waited on yet.
func (d *Deliverer) redispatch(m redisstore.DeliveryMsg) {
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		d.Dispatch(d.loopCtx, d.workCtx, []redisstore.DeliveryMsg{m})
	}()
}

// ExpireParked moves deliveries that waited too long for their hook to the
// schedule, before their lease runs out.
func (d *Deliverer) ExpireParked(now time.Time) {
	for _, m := range d.busy.expired(now) {
		d.postpone(&m, now.Add(jitter(time.Second)), "saturated")
	}
}

// deliver makes one attempt (or finds it must wait) and settles the entry.
// Once the request is done, it calls release to give its worker slot to the
// next delivery while it settles, unless too many settles are under way
// (Redis is slow): then the slot waits, and so does reading more work.
func (d *Deliverer) deliver(ctx context.Context, m *redisstore.DeliveryMsg, release func()) {
	dv := &m.Delivery
	if ctx.Err() != nil {
		// Shutting down (the work was aborted): nothing is sent, decided
		// or recorded, so the entry stays pending and is delivered after
		// the lease, by this process once it restarts or by another.
		d.leftPending(dv, "delivery not started: shutting down; it stays queued and is sent after the lease", 0)
		return
	}
	hook, ok := d.hooks().Get(dv.HookID)
	if m.Err != nil || !ok {
		metrics.Deliveries.WithLabelValues("dropped").Inc()
		if m.Err != nil {
			d.log.Error("dropping undecodable delivery entry", zap.Error(m.Err))
		} else {
			d.log.Warn("dropping delivery: its hook no longer exists",
				zap.Int64("hook_id", dv.HookID), zap.String("event", dv.EventID))
		}
		d.settlePlain(m)
		return
	}
	if hook.Ordered && d.ordered != nil {
		d.handOrdered(m) // one at a time, in capture order (engine/ordered)
		return
	}
	cfg := d.cfg.Load()
	now := time.Now()
	if now.Sub(dv.At) > cfg.Retry.MaxAge {
		d.GiveUp(m, hook, "expired: waited longer than the max delivery age")
		return
	}
	// A hook at its concurrency cap does not take a worker from the others.
	// It waits here for a slot of its hook, or in the schedule when too
	// many already wait.
	maxParked := max(parkedPerSlot*cfg.HookConcurrency, 2*cfg.Workers) // what one read-ahead may bring
	acquired, parked := d.busy.acquireOrPark(hook.ID, cfg.HookConcurrency, m, maxParked, now.Add(cfg.Lease/4))
	if !acquired {
		if !parked {
			d.postpone(m, now.Add(jitter(time.Second)), "saturated")
		}
		return
	}
	releaseHook := sync.OnceFunc(func() {
		if next, ok := d.busy.release(hook.ID); ok {
			d.redispatch(next)
		}
	})
	defer releaseHook()
	if !d.admitted(ctx, cfg, m, hook, now) {
		return
	}

	req, res := d.try(ctx, cfg, hook, dv)
	if ctx.Err() != nil {
		// Aborted by Close (its grace ran out): the outcome is not
		// recorded, so the entry stays pending and is sent again after the
		// lease. Said, since the receiver may have got this attempt.
		d.leftPending(dv, "delivery aborted by shutdown; it stays queued and is sent again after the lease", res.Status)
		return
	}
	releaseHook()
	select {
	case d.settling <- struct{}{}:
		release()
		defer func() { <-d.settling }()
	default:
	}
	out, entry := d.observe(cfg, hook, dv, &req, &res)
	d.settle(m, hook, out, entry)
}

// try sends dv to hook once: a queued delivery's attempt, ordered or not
// (tests and resends go through manual.go).
func (d *Deliverer) try(ctx context.Context, cfg *Config, hook *webhook.Hook, dv *webhook.Delivery) (Request, Result) {
	if dv.Attempt == 1 {
		metrics.FirstAttemptLatency.Observe(time.Since(dv.At).Seconds())
	}
	req := RequestOf(hook, dv)
	return req, d.sender.Send(ctx, &cfg.Send, &req)
}

// observe counts and logs a queued delivery's attempt, and returns what
// it comes to under the hook's retry policy, and its log entry.
func (d *Deliverer) observe(cfg *Config, hook *webhook.Hook, dv *webhook.Delivery, req *Request, res *Result) (redisstore.Outcome, *webhook.LogEntry) {
	metrics.Deliveries.WithLabelValues(res.Outcome()).Inc()
	metrics.DeliveryDuration.Observe(res.Duration.Seconds())
	d.logResult(hooklog.KindDelivery, req, res)
	return cfg.Retry.For(hook).outcome(res, dv, time.Now()), d.record.Entry(hooklog.KindDelivery, attempt(req, res))
}

// leftPending reports a delivery its work context ended on: it is not
// settled, so it stays pending in Redis for recovery. Counted as
// deliveries_total{result="aborted"}.
func (d *Deliverer) leftPending(dv *webhook.Delivery, msg string, status int) {
	metrics.Deliveries.WithLabelValues("aborted").Inc()
	d.log.Warn(msg, zap.Int64("hook_id", dv.HookID), zap.String("event", dv.EventID),
		zap.Int("attempt", dv.Attempt), zap.Int("status", status))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
