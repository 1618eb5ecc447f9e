// Package fanout turns captured events into deliveries: it reads the events
// stream, chooses each event's hooks (scope, trigger, branch filter), stops
// webhook loops (the recursion guard), queues one delivery per hook, writes
// the messages of the chat integrations an event goes to (chats.go), and
// keeps each project's latest event per trigger as the sample of test
// requests.
package fanout

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
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

// Fanout reads the events of one runtime and queues their deliveries.
type Fanout struct {
	store    *redisstore.Store
	consumer string
	log      *zap.Logger
	hooks    func() *webhook.HookSet
	cfg      atomic.Pointer[Config]
	cursor   string
}

// New builds a fan-out; hooks returns the hooks in effect.
func New(store *redisstore.Store, consumer string, log *zap.Logger, hooks func() *webhook.HookSet) *Fanout {
	return &Fanout{store: store, consumer: consumer, log: log, hooks: hooks,
		cursor: "0"} // our own unfinished events first (after a crash)
}

// Configure swaps in new settings.
func (f *Fanout) Configure(c Config) { f.cfg.Store(&c) }

// readBlock bounds blocking reads so loops notice shutdown promptly even if
// a read is not interrupted.
const readBlock = 2 * time.Second

// Step reads the next events and fans them out; the runtime calls it in a
// loop. The read blocks, so there is no wait between steps.
func (f *Fanout) Step(ctx context.Context) (time.Duration, error) {
	msgs, err := f.store.ReadEvents(ctx, f.consumer, f.cursor, 128, readBlock)
	if err == nil && len(msgs) > 0 {
		err = f.FanOut(ctx, msgs)
	}
	if err != nil {
		return 0, err
	}
	f.cursor = redisstore.Advance(f.cursor, len(msgs), func() string { return msgs[len(msgs)-1].StreamID })
	return 0, nil
}

// FanOut queues one delivery per matching hook for each event, then drops
// the events from the events stream. A hook that the event's chain
// (X-Gitlab-Event-UUID) already triggered through another event is not
// triggered again: that is a webhook loop.
func (f *Fanout) FanOut(ctx context.Context, msgs []redisstore.EventMsg) error {
	hooks := f.hooks()
	cfg := f.cfg.Load()
	ids := make([]string, 0, len(msgs))
	var ds, chats []webhook.Delivery
	var checks []redisstore.ChainCheck
	for i := range msgs {
		m := &msgs[i]
		ids = append(ids, m.StreamID)
		if m.Err != nil {
			metrics.EventsRejected.WithLabelValues("undecodable").Inc()
			f.log.Error("dropping undecodable event entry", zap.Error(m.Err))
			continue
		}
		chats = f.chatDeliveries(hooks, &m.Event, chats) // chats.go
		matched := Match(hooks, &m.Event, nil)
		if len(matched) == 0 {
			continue
		}
		c := redisstore.ChainCheck{Chain: m.Event.Chain, EventID: m.Event.ID}
		for _, h := range matched {
			c.HookIDs = append(c.HookIDs, h.ID)
			ds = append(ds, webhook.Delivery{
				EventID: m.Event.ID, HookID: h.ID, Trigger: m.Event.Trigger, Chain: m.Event.Chain,
				At: m.Event.At, Body: m.Event.Body, Attempt: 1,
			})
		}
		checks = append(checks, c)
		if c := f.log.Check(zap.DebugLevel, "event fanned out"); c != nil {
			c.Write(zap.String("event", m.Event.ID), zap.String("trigger", m.Event.Trigger),
				zap.String("project", m.Event.Project), zap.String("namespace", m.Event.Namespace),
				zap.Int("hooks", len(matched)))
		}
	}
	verdicts, err := f.store.CheckChains(ctx, checks, cfg.RecursionWindow, cfg.MaxChainHooks)
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
			metrics.Deliveries.WithLabelValues("blocked").Inc()
			f.log.Warn(reason, zap.Int64("hook_id", d.HookID), zap.String("event", d.EventID),
				zap.String("event_uuid", d.Chain), zap.String("trigger", d.Trigger))
		}
	}
	allowed = append(allowed, chats...)
	if err := f.store.FanOut(ctx, ids, allowed); err != nil {
		return err
	}
	f.rememberLatest(ctx, msgs)
	return nil
}

// rememberLatest keeps the payloads of testable events as their projects'
// latest of that trigger: the sample a test request sends ("the latest
// push" of GitLab's push test). It runs in the fan-out, off the response
// path; a failure only costs the sample.
func (f *Fanout) rememberLatest(ctx context.Context, msgs []redisstore.EventMsg) {
	var evs []*webhook.Event
	for i := range msgs {
		ev := &msgs[i].Event
		if msgs[i].Err == nil && ev.Project != "" && gitlab.Trigger(ev.Trigger).Testable() {
			evs = append(evs, ev)
		}
	}
	if err := f.store.SetLatestEvents(ctx, evs, LatestEventTTL); err != nil {
		f.log.Debug("remembering the latest events for test requests failed", zap.Error(err))
	}
}

// LatestEvent returns the latest payload of trigger seen for project, or
// nil.
func (f *Fanout) LatestEvent(ctx context.Context, project string, trig gitlab.Trigger) ([]byte, error) {
	return f.store.LatestEvent(ctx, project, string(trig))
}
