// Package fanout turns captured events into deliveries: it reads the events
// stream, chooses each event's hooks (scope, trigger, branch filter), stops
// webhook loops (the recursion guard), queues one delivery per hook, writes
// the messages of the chat integrations an event goes to (chats.go), and
// keeps each project's latest event per trigger as the sample of test
// requests.
package fanout

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/engine/tracing"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// GitLab's limits of the recursion guard.
const (
	// RecursionWindow is how long a chain remembers its hooks (GitLab: 30 min).
	RecursionWindow = 30 * time.Minute
	// MaxChainHooks caps the hooks one chain may trigger (GitLab: 100).
	MaxChainHooks = 100
)

// LatestEventTTL is how long the latest event of each trigger is kept per
// project as the sample of test requests.
const LatestEventTTL = 30 * 24 * time.Hour

// Config is the recursion guard's settings.
type Config struct {
	// RecursionWindow is how long a chain (X-Gitlab-Event-UUID) remembers
	// the hooks it triggered; MaxChainHooks caps the hooks of one chain.
	RecursionWindow time.Duration
	MaxChainHooks   int
}

// Workers are the process's delivery workers (the deliverer), to which
// the fan-out hands the deliveries it queues while they have room: taken
// in the fan-out's own script, they need no read of their own.
type Workers interface {
	// Room is how many deliveries the workers can start at once now; 0
	// while deliveries are held (paused, silent mode) or not started.
	Room() int
	// Take starts deliveries taken for the fan-out's consumer, which is
	// also theirs; they are pending for it in Redis until settled.
	Take(msgs []redisstore.DeliveryMsg)
}

// Store is what fan-out reads and writes in Redis.
type Store struct {
	Queue   *redisstore.Queue
	Samples *redisstore.Samples
}

// Fanout reads the events of one runtime and queues their deliveries.
type Fanout struct {
	store    Store
	consumer string
	log      *zap.Logger
	hooks    func() *webhook.HookSet
	workers  Workers
	spans    *tracing.Spans
	in       inbox // events taken for this fan-out by captures (inbox.go)
	cfg      atomic.Pointer[Config]
	cursors  []string // per shard
	// sampled is when each project's latest event of a trigger was last
	// kept (project + "\x00" + trigger); only the fan-out loops touch it.
	sampled sync.Map
}

// New builds a fan-out; hooks returns the hooks in effect; workers (may
// be nil) take deliveries at once while they have room; spans records the
// fan-out of events captured in a trace.
func New(store Store, consumer string, log *zap.Logger, hooks func() *webhook.HookSet, workers Workers, spans *tracing.Spans) *Fanout {
	f := &Fanout{store: store, consumer: consumer, log: log, hooks: hooks, workers: workers, spans: spans}
	f.in.wake = make(chan struct{}, 1)
	f.cursors = make([]string, store.Queue.Shards())
	for i := range f.cursors {
		f.cursors[i] = "0" // our own unfinished events first (after a crash)
	}
	return f
}

// Configure swaps in new settings.
func (f *Fanout) Configure(c Config) { f.cfg.Store(&c) }

// readBlock bounds blocking reads so loops notice shutdown promptly even if
// a read is not interrupted.
const readBlock = 5 * time.Second

// Step reads the next events of a shard and fans them out; the runtime
// calls it in a loop per shard. The read blocks, so there is no wait
// between steps.
func (f *Fanout) Step(ctx context.Context, shard int) (time.Duration, error) {
	cursor := f.cursors[shard]
	msgs, err := f.store.Queue.ReadEvents(ctx, shard, f.consumer, cursor, 128, readBlock)
	if err == nil && len(msgs) > 0 {
		err = f.FanOut(ctx, msgs)
	}
	if err != nil {
		return 0, err
	}
	f.cursors[shard] = redisstore.Advance(cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	return 0, nil
}

// FanOut queues one delivery per matching hook for each event (messages
// of one shard), and settles the events with their deliveries. A hook that
// the event's chain (X-Gitlab-Event-UUID) already triggered through
// another event is not triggered again: that is a webhook loop. Payloads
// are read only for the events that need them: chat messages are written
// from them, and some become the sample of test requests.
func (f *Fanout) FanOut(ctx context.Context, msgs []redisstore.EventMsg) error {
	if len(msgs) == 0 {
		return nil
	}
	hooks := f.hooks()
	cfg := f.cfg.Load()
	shard := msgs[0].Shard
	out := make([]redisstore.Fanned, 0, len(msgs))
	var need []int // msgs whose payload is read
	now := time.Now()
	for i := range msgs {
		m := &msgs[i]
		out = append(out, redisstore.Fanned{Shard: m.Shard, StreamID: m.StreamID, EventID: m.Event.ID, Chain: m.Event.Chain})
		if m.Err != nil {
			metrics.EventsRejected.WithLabelValues("undecodable").Inc()
			f.log.Error("dropping undecodable event entry", zap.Error(m.Err))
			continue
		}
		if m.Event.Body == nil && (f.wantsSample(&m.Event, now) || len(MatchChats(hooks, &m.Event, nil)) > 0) {
			need = append(need, i)
		}
		out[i].Deliveries, out[i].Ordered = f.hookDeliveries(hooks, &m.Event)
		out[i].Checked, out[i].At = len(out[i].Deliveries), m.Event.At
	}
	if err := f.readPayloads(ctx, shard, msgs, need); err != nil {
		return err
	}
	for i := range msgs {
		if msgs[i].Err == nil && msgs[i].Event.Body != nil {
			out[i].Deliveries = f.chatDeliveries(hooks, &msgs[i].Event, out[i].Deliveries) // chats.go
		}
	}
	// The recursion guard runs in the same script as the queueing, and so
	// does the hand-off to idle workers.
	n := 0
	for i := range out {
		n += len(out[i].Deliveries)
	}
	if err := f.store.Queue.FanOut(ctx, out, f.chainRule(cfg), f.handOff(n)); err != nil {
		return err
	}
	f.traceFanOut(msgs, out, now) // trace.go
	var taken []redisstore.DeliveryMsg
	for i := range out {
		f.reportBlocked(out[i].Verdicts, out[i].Deliveries)
		taken = append(taken, out[i].Taken...)
	}
	if len(taken) > 0 {
		f.workers.Take(taken)
	}
	f.rememberLatest(ctx, msgs, now)
	return nil
}

// hookDeliveries are the deliveries of ev to the hooks that take it, all
// of its shared payload, and which of them are of ordered hooks (nil when
// none is): those go to their hooks' queues (engine/ordered).
func (f *Fanout) hookDeliveries(hooks *webhook.HookSet, ev *webhook.Event) ([]webhook.Delivery, []bool) {
	var buf [8]*webhook.Hook
	matched := Match(hooks, ev, buf[:0])
	if len(matched) == 0 {
		return nil, nil
	}
	ds := make([]webhook.Delivery, 0, len(matched))
	for _, h := range matched {
		ds = append(ds, webhook.Delivery{EventID: ev.ID, HookID: h.ID, Trigger: ev.Trigger, Chain: ev.Chain,
			At: ev.At, Attempt: 1, Shared: true, Trace: ev.Trace})
	}
	if c := f.log.Check(zap.DebugLevel, "event fanned out"); c != nil {
		c.Write(zap.String("event", ev.ID), zap.String("trigger", ev.Trigger), zap.String("project", ev.Project),
			zap.String("namespace", ev.Namespace), zap.Int("hooks", len(matched)))
	}
	return ds, orderedOf(matched)
}

// orderedOf tells which of hooks are ordered; nil when none is.
func orderedOf(hooks []*webhook.Hook) []bool {
	var out []bool
	for i, h := range hooks {
		if h.Ordered && out == nil {
			out = make([]bool, len(hooks))
		}
		if out != nil {
			out[i] = h.Ordered
		}
	}
	return out
}

// handOff asks the queueing script to take the n deliveries it queues
// for this process's workers, when they can take them all (a steady
// trickle): they then need no read of their own. A backlog is better read
// in batches by the delivery loop.
func (f *Fanout) handOff(n int) redisstore.HandOff {
	ho := redisstore.HandOff{Consumer: f.consumer}
	if f.workers != nil {
		if room := f.workers.Room(); n <= room {
			ho.Max = room
		}
	}
	return ho
}

// chainRule is the recursion guard's rule under cfg.
func (f *Fanout) chainRule(cfg *Config) redisstore.ChainRule {
	return redisstore.ChainRule{Window: cfg.RecursionWindow, MaxHooks: cfg.MaxChainHooks}
}

// reportBlocked counts and logs the deliveries (the first of ds, checked
// in their chain) that the chain refused.
func (f *Fanout) reportBlocked(verdicts []redisstore.ChainVerdict, ds []webhook.Delivery) {
	for j, v := range verdicts {
		if v == redisstore.ChainAllowed {
			continue
		}
		d := &ds[j]
		reason := "recursive webhook blocked: the hook was already triggered in this chain"
		if v == redisstore.ChainTooLong {
			reason = "recursive webhook blocked: the chain triggered too many hooks"
		}
		metrics.Deliveries.WithLabelValues("blocked").Inc()
		f.log.Warn(reason, zap.Int64("hook_id", d.HookID), zap.String("event", d.EventID),
			zap.String("event_uuid", d.Chain), zap.String("trigger", d.Trigger))
	}
}

// readPayloads fills in the bodies of msgs[need].
func (f *Fanout) readPayloads(ctx context.Context, shard int, msgs []redisstore.EventMsg, need []int) error {
	if len(need) == 0 {
		return nil
	}
	ids := make([]string, len(need))
	for k, i := range need {
		ids[k] = msgs[i].Event.ID
	}
	bodies, err := f.store.Queue.Payloads(ctx, shard, ids)
	if err != nil {
		return err
	}
	for k, i := range need {
		msgs[i].Event.Body = bodies[k]
	}
	return nil
}

// sampleEvery is how often a project's latest event of a trigger is kept
// as the sample of test requests, at most, per process: keeping every one
// would write each payload a second time.
const sampleEvery = time.Minute

// wantsSample tells whether ev should become its project's sample of its
// trigger now.
func (f *Fanout) wantsSample(ev *webhook.Event, now time.Time) bool {
	if ev.Project == "" || !gitlab.Trigger(ev.Trigger).Testable() {
		return false
	}
	last, ok := f.sampled.Load(ev.Project + "\x00" + ev.Trigger)
	return !ok || now.Sub(last.(time.Time)) >= sampleEvery
}

// rememberLatest keeps the payloads of testable events as their projects'
// latest of that trigger (at most one per sampleEvery): the sample a test
// request sends ("the latest push" of GitLab's push test). It runs in the
// fan-out, off the response path; a failure only costs the sample.
func (f *Fanout) rememberLatest(ctx context.Context, msgs []redisstore.EventMsg, now time.Time) {
	var evs []*webhook.Event
	for i := range msgs {
		ev := &msgs[i].Event
		if msgs[i].Err == nil && ev.Body != nil && f.wantsSample(ev, now) {
			evs = append(evs, ev)
		}
	}
	if err := f.store.Samples.Keep(ctx, evs, LatestEventTTL); err != nil {
		f.log.Debug("remembering the latest events for test requests failed", zap.Error(err))
		return
	}
	for _, ev := range evs {
		f.sampled.Store(ev.Project+"\x00"+ev.Trigger, now)
	}
}

// LatestEvent returns the latest payload of trigger seen for project, or
// nil.
func (f *Fanout) LatestEvent(ctx context.Context, project string, trig gitlab.Trigger) ([]byte, error) {
	return f.store.Samples.Latest(ctx, project, string(trig))
}
