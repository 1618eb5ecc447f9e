// Package ordered sends the deliveries of ordered hooks one at a time, in
// the order their events were captured, across every process and shard
// (redisstore.Ordered keeps the queues).
//
// Events of one hook live in many shards (an event's shard follows its
// chain), and a process may capture an event and take a while to get it
// into Redis (a slow enqueue, the spool during an outage). So a head goes
// only once nothing captured before it can still join its queue: its
// capture time is below the watermark, the earliest of
//   - every live process's capture mark (what it holds that is not in
//     Redis yet: captures under way, its spool), published every
//     markInterval;
//   - what waits in the shards to be fanned out, or in their ordered
//     inboxes to move to a queue.
//
// The process that leases a head sends it, records the outcome, and takes
// the next head in the same script; a failing head holds the ones behind
// it until it is delivered, dead-lettered, or the hook is disabled for
// good. A process that dies holding a lease loses it after the lease; one
// that dies holding events not in Redis holds the watermark back until its
// mark expires (the lease), then its events, if it comes back with them
// spooled, are late: sent next, and counted.
package ordered

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Timing of the ordered queues.
const (
	// markInterval is how often a process publishes its capture mark while
	// it knows ordered hooks; tickInterval how often it looks for heads.
	markInterval = 100 * time.Millisecond
	tickInterval = 100 * time.Millisecond
	// idleInterval is how often a process that knows no ordered hook
	// looks for queues left (a hook made unordered) and publishes its mark.
	idleInterval = 5 * time.Second
	// grace is how long heads wait after Redis failed (and after a start):
	// every live process publishes its mark again meanwhile.
	grace = time.Second
	// captureSlack covers the moment between an event's capture and its
	// enqueue, when it is in no count yet.
	captureSlack = 5 * time.Millisecond
	// unknownHookWait is when a head of a hook this process does not know
	// is looked at again.
	unknownHookWait = 5 * time.Second
)

// Deliverer is what the ordered queues need of delivery.
type Deliverer interface {
	// Holding tells whether deliveries must stay queued (pause, silent mode).
	Holding() bool
	// Room is how many deliveries could start at once now.
	Room() int
	Slot(ctx context.Context) (release func(), err error)
	AttemptOrdered(ctx context.Context, hook *webhook.Hook, dv *webhook.Delivery) delivery.Attempted
	Settings() delivery.Config
	NoteSettled(hook *webhook.Hook, dv *webhook.Delivery, out redisstore.Outcome, st redisstore.Settled)
	Record(ctx context.Context, e *webhook.LogEntry)
}

// Queues runs the ordered hooks' queues of one runtime.
type Queues struct {
	store    *redisstore.Ordered
	consumer string
	log      *zap.Logger
	hooks    func() *webhook.HookSet
	deliver  Deliverer
	// Captures are this process's events not in Redis yet.
	Captures Captures
	spooled  atomic.Pointer[func() (time.Time, bool)]

	loopCtx, workCtx context.Context
	resumeAt         atomic.Int64 // unix ms: heads wait until then
	tokens           atomic.Uint64
	known            atomic.Pointer[knownHooks]
	sending          sync.WaitGroup
}

// knownHooks is which hook slots hold the ordered hooks of a hook set.
type knownHooks struct {
	set   *webhook.HookSet
	slots []int
}

// New builds the ordered queues of a runtime.
func New(store *redisstore.Ordered, consumer string, log *zap.Logger, hooks func() *webhook.HookSet, deliver Deliverer) *Queues {
	return &Queues{store: store, consumer: consumer, log: log, hooks: hooks, deliver: deliver}
}

// SetSpooled says how to read the earliest capture time of the events
// this process's spool holds (nil: no spool).
func (q *Queues) SetSpooled(f func() (time.Time, bool)) { q.spooled.Store(&f) }

// Start begins: ctx ends the loops, work aborts attempts in flight.
func (q *Queues) Start(ctx, work context.Context) {
	q.loopCtx, q.workCtx = ctx, work
	q.pause(time.Now())
}

// Wait waits for the heads being sent.
func (q *Queues) Wait() { q.sending.Wait() }

// pause holds heads for grace from now.
func (q *Queues) pause(now time.Time) { q.resumeAt.Store(now.Add(grace).UnixMilli()) }

// slots returns the hook slots of the ordered hooks in effect; none when
// there is none.
func (q *Queues) slots() []int {
	set := q.hooks()
	if k := q.known.Load(); k != nil && k.set == set {
		return k.slots
	}
	seen := map[int]bool{}
	var slots []int
	for _, h := range set.All() {
		if j := redisstore.OrderedSlotOf(h.ID); h.Ordered && !seen[j] {
			seen[j] = true
			slots = append(slots, j)
		}
	}
	q.known.Store(&knownHooks{set: set, slots: slots})
	return slots
}

// Tail adds a delivery that reached the ready stream to the tail of its
// hook's queue (delivery.OrderedQueue): it goes after every event
// captured before now.
func (q *Queues) Tail(ctx context.Context, shard int, d *webhook.Delivery) error {
	key, err := uuid.NewV7()
	if err != nil {
		return err
	}
	_, err = q.store.Add(ctx, d.HookID, []redisstore.OrderedEntry{{Key: key.String(), Shard: shard, Delivery: *d}})
	return err
}

// MarkStep publishes this process's capture mark: the earliest capture
// time of its events not in Redis yet (captures under way, refused ones
// until spooled, the spool), or now. The runtime calls it in a loop; a
// failure is tried again at the next interval (no backoff: after an
// outage the mark must be back before the others' grace ends).
func (q *Queues) MarkStep(ctx context.Context) (time.Duration, error) {
	now := time.Now()
	mark := now.Add(-captureSlack)
	if at, ok := q.Captures.Oldest(now); ok && at.Before(mark) {
		mark = at
	}
	if f := q.spooled.Load(); f != nil && *f != nil {
		if at, ok := (*f)(); ok && at.Before(mark) {
			mark = at
		}
	}
	lease := q.deliver.Settings().Lease
	interval := markInterval
	if len(q.slots()) == 0 {
		interval = min(idleInterval, lease/3)
	}
	if err := q.store.PublishMark(ctx, q.consumer, mark, now.Add(lease)); err != nil && ctx.Err() == nil {
		q.log.Debug("publishing the capture mark failed; trying again", zap.Error(err))
		return markInterval, nil
	}
	return interval, nil
}

// Step moves the ordered inboxes to the hooks' queues and starts the
// heads that may go; the runtime calls it in a loop. Redis trouble holds
// the heads for grace once it is over.
func (q *Queues) Step(ctx context.Context) (time.Duration, error) {
	slots := q.slots()
	interval := tickInterval
	if len(slots) == 0 {
		interval = idleInterval
		slots = allSlots
		// No ordered hook here: only what is left of queues, if any.
		if waiting, err := q.store.Waiting(ctx); err != nil || !waiting {
			return interval, nil
		}
	}
	if q.deliver.Holding() {
		return interval, nil
	}
	now := time.Now()
	if err := q.step(ctx, slots, now); err != nil {
		if ctx.Err() == nil {
			q.pause(time.Now())
			q.log.Warn("ordered hooks: redis error; heads wait until it is over", zap.Error(err))
		}
	}
	return interval, nil
}

var allSlots = func() []int {
	s := make([]int, redisstore.HookSlots)
	for j := range s {
		s[j] = j
	}
	return s
}()

func (q *Queues) step(ctx context.Context, slots []int, now time.Time) error {
	msgs, err := q.store.ReadInbox(ctx)
	if err != nil {
		return err
	}
	if len(msgs) > 0 {
		_, late, err := q.store.MoveInbox(ctx, msgs)
		if err != nil {
			return err
		}
		if late > 0 {
			metrics.OrderedLate.Add(float64(late))
			q.log.Warn("ordered hooks: deliveries came after later ones had gone (their events reached Redis late); they go next",
				zap.Int("count", late))
		}
	}
	if now.UnixMilli() < q.resumeAt.Load() {
		return nil
	}
	room := q.deliver.Room()
	if room == 0 {
		return nil
	}
	w, err := q.watermark(ctx, now)
	if err != nil {
		return err
	}
	token := q.consumer + ":" + strconv.FormatUint(q.tokens.Add(1), 10)
	heads, err := q.store.Take(ctx, slots, now, w, room, token, q.deliver.Settings().Lease)
	if err != nil {
		return err
	}
	for i := range heads {
		h := heads[i]
		q.sending.Add(1)
		go func() {
			defer q.sending.Done()
			q.run(&h, w)
		}()
	}
	return nil
}

// watermark is the capture time (ms) below which every event is in its
// hook's queue: the marks are read first, then the shards, so an event
// moving between them meanwhile is seen in one or the other.
func (q *Queues) watermark(ctx context.Context, now time.Time) (int64, error) {
	w, err := q.store.Marks(ctx, now)
	if err != nil {
		return 0, err
	}
	bound, hold, err := q.store.Bound(ctx)
	if err != nil {
		return 0, err
	}
	if hold {
		return 0, nil // the fan-out is far behind: heads wait for it
	}
	return min(w, bound, now.UnixMilli()), nil
}

// run sends a leased head and the heads that follow it while they may go,
// with one worker slot.
func (q *Queues) run(h *redisstore.Head, w int64) {
	leased := time.Now()
	release, err := q.deliver.Slot(q.loopCtx)
	if err != nil {
		return // shutting down: the lease runs out, the head is sent later
	}
	defer release()
	// A head whose lease is half gone (the slot was long in coming) is
	// given back rather than sent: another process may take it over
	// before this attempt is over.
	for h != nil && q.loopCtx.Err() == nil && !q.deliver.Holding() && time.Since(leased) < q.deliver.Settings().Lease/2 {
		h = q.attempt(h, w)
		leased = time.Now()
	}
	if h != nil { // holding or stopping: give it back
		q.settle(h, nil, redisstore.OrderedSettle{Next: redisstore.OrderedRelease, Due: time.Now()})
	}
}

// attempt sends head h and settles it; it returns the next head, leased,
// when it may go at once.
func (q *Queues) attempt(h *redisstore.Head, w int64) *redisstore.Head {
	if h.Gone {
		metrics.Deliveries.WithLabelValues("dropped").Inc()
		q.log.Error("ordered hooks: the head of a queue had no delivery left; it was dropped",
			zap.Int64("hook_id", h.HookID), zap.String("key", h.Key))
		return nil
	}
	hook, ok := q.hooks().Get(h.HookID)
	if !ok {
		metrics.Deliveries.WithLabelValues("dropped").Inc()
		q.log.Warn("dropping delivery: its hook no longer exists", zap.Int64("hook_id", h.HookID),
			zap.String("event", h.Delivery.EventID))
		return q.settle(h, nil, redisstore.OrderedSettle{Next: redisstore.OrderedDead, Take: true, W: w})
	}
	cfg := q.deliver.Settings()
	now := time.Now()
	switch {
	case h.Err != nil:
		return q.giveUp(h, hook, w, "undecodable ordered delivery: "+h.Err.Error())
	case len(h.Delivery.Body) == 0 || string(h.Delivery.Body) == "null":
		return q.giveUp(h, hook, w, "the payload of this delivery is gone (it was missing when it reached its hook's ordered queue)")
	case h.Disabled:
		return q.giveUp(h, hook, w, "hook disabled: re-enable it (a successful test does) and redrive")
	case now.Sub(h.Delivery.At) > cfg.Retry.MaxAge:
		return q.giveUp(h, hook, w, "expired: waited longer than the max delivery age")
	}
	ctx := q.workCtx
	a := q.deliver.AttemptOrdered(ctx, hook, &h.Delivery)
	if ctx.Err() != nil {
		// Aborted by Close: the lease runs out and the head is sent again.
		return nil
	}
	if !a.Wait.IsZero() {
		return q.settle(h, hook, redisstore.OrderedSettle{Next: redisstore.OrderedRelease, Due: a.Wait})
	}
	out := a.Outcome
	// The attempt's log entry is written while the outcome is settled: a
	// round trip fewer between one head and the next.
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		q.deliver.Record(q.loopCtxOrBackground(), a.Entry)
	}()
	defer func() { <-recorded }()
	s := redisstore.OrderedSettle{Outcome: &out, Health: cfg.HealthFor(hook), Take: true, W: w}
	switch {
	case out.Success:
		s.Next = redisstore.OrderedDone
	case out.Retry:
		next := h.Delivery
		next.Attempt++
		s.Next, s.Due, s.Retry, s.Take = redisstore.OrderedRetry, out.RetryAt, &next, false
	default:
		if !q.deadLetter(h, out.Reason) {
			return nil // the lease runs out and the head is tried again
		}
		s.Next = redisstore.OrderedDead
	}
	return q.settleNoted(h, hook, out, s)
}

// giveUp dead-letters head h without an attempt.
func (q *Queues) giveUp(h *redisstore.Head, hook *webhook.Hook, w int64, reason string) *redisstore.Head {
	if !q.deadLetter(h, reason) {
		return nil
	}
	return q.settleNoted(h, hook, redisstore.Outcome{Reason: reason}, redisstore.OrderedSettle{Next: redisstore.OrderedDead, Take: true, W: w})
}

// deadLetter adds head h to its shard's dead letters.
func (q *Queues) deadLetter(h *redisstore.Head, reason string) bool {
	ctx, cancel := context.WithTimeout(q.loopCtxOrBackground(), 5*time.Second)
	defer cancel()
	c, b, err := q.store.AddDeadLetter(ctx, h, reason, q.deliver.Settings().DeadLetters, time.Now())
	if err != nil {
		q.log.Error("dead-lettering an ordered delivery failed; it will be tried again after the lease",
			zap.Int64("hook_id", h.HookID), zap.String("event", h.Delivery.EventID), zap.Error(err))
		return false
	}
	metrics.DeadLettersTrimmed.WithLabelValues("count").Add(float64(c))
	metrics.DeadLettersTrimmed.WithLabelValues("bytes").Add(float64(b))
	return true
}

// settleNoted settles h, and tells the deliverer what it found.
func (q *Queues) settleNoted(h *redisstore.Head, hook *webhook.Hook, out redisstore.Outcome, s redisstore.OrderedSettle) *redisstore.Head {
	s.NewToken = q.consumer + ":" + strconv.FormatUint(q.tokens.Add(1), 10) + ":" + strconv.FormatInt(h.HookID, 10)
	s.Lease = q.deliver.Settings().Lease
	ctx, cancel := context.WithTimeout(q.loopCtxOrBackground(), 5*time.Second)
	defer cancel()
	st, err := q.store.Settle(ctx, h, s)
	if err != nil {
		q.log.Error("recording an ordered delivery's outcome failed; it will be tried again after the lease",
			zap.Int64("hook_id", h.HookID), zap.String("event", h.Delivery.EventID), zap.Error(err))
		return nil
	}
	if st.Stale {
		q.log.Warn("ordered hooks: the head's lease ran out before its outcome was recorded; another process sends it",
			zap.Int64("hook_id", h.HookID), zap.String("event", h.Delivery.EventID))
		return nil
	}
	q.deliver.NoteSettled(hook, &h.Delivery, out, redisstore.Settled{Fails: st.Fails, DisabledUntil: st.DisabledUntil,
		Disabled: st.Disabled, Event: st.Event})
	return st.Next
}

// settle settles h without telling the deliverer (no attempt was made).
func (q *Queues) settle(h *redisstore.Head, _ *webhook.Hook, s redisstore.OrderedSettle) *redisstore.Head {
	s.NewToken = q.consumer + ":" + strconv.FormatUint(q.tokens.Add(1), 10) + ":" + strconv.FormatInt(h.HookID, 10)
	s.Lease = q.deliver.Settings().Lease
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := q.store.Settle(ctx, h, s)
	if err != nil || st.Stale {
		return nil
	}
	return st.Next
}

// loopCtxOrBackground bounds the writes that record outcomes: they go on
// while the loops stop (Close gives in-flight work its grace).
func (q *Queues) loopCtxOrBackground() context.Context {
	return context.WithoutCancel(q.loopCtx)
}

// State reads an ordered hook's queue (the API shows it).
func (q *Queues) State(ctx context.Context, hookID int64) (redisstore.OrderedState, error) {
	return q.store.State(ctx, hookID)
}

// Drop deletes the queue of a deleted hook.
func (q *Queues) Drop(ctx context.Context, hookID int64) error { return q.store.Drop(ctx, hookID) }
