package fanout

import (
	"bytes"
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Capture fans an event out as it is captured: the hooks and chat
// integrations it goes to are chosen here, on the capture's goroutine, and
// its deliveries are queued in the capture's own call to Redis
// (redisstore.Queue.Capture), checked in the event's recursion chain as
// FanOut checks them. The event then never enters the events stream: no
// fan-out read, no second script, no wake-up of the fan-out loop. An event
// no hook or chat takes costs no Redis call at all, as in GitLab, where an
// event of a project without hooks makes no job. Deliveries that idle
// workers can take go to them at once.
//
// Once Capture returns nil, every delivery is durable in Redis; an error
// leaves the caller to spool the event, as a failed AddEvent does. The
// runtime calls it while the fan-out runs and the hooks managed through
// the API are loaded; otherwise events go through the events stream.
func (f *Fanout) Capture(ctx context.Context, ev *webhook.Event) error {
	hooks := f.hooks()
	now := time.Now()
	if f.wantsSample(ev, now) {
		// Marked at once, so that concurrent captures keep one; a
		// sample that fails to be kept is tried a minute later.
		f.sampled.Store(ev.Project+"\x00"+ev.Trigger, now)
		cp := *ev
		cp.Body = bytes.Clone(ev.Body) // the caller's buffer may be reused
		go f.keepSample(&cp)
	}
	ds, ordered := f.hookDeliveries(hooks, ev)
	c := redisstore.Captured{Event: ev, Checked: len(ds), Ordered: ordered}
	c.Deliveries = f.chatDeliveries(hooks, ev, ds) // chats.go
	if len(c.Deliveries) == 0 {
		return nil
	}
	err := f.store.Queue.Capture(ctx, &c, f.chainRule(f.cfg.Load()), f.handOff(len(c.Deliveries)))
	if len(c.Taken) > 0 {
		f.workers.Take(c.Taken) // pending for our consumer, even with err
	}
	if err != nil {
		return err
	}
	f.reportBlocked(c.Verdicts, c.Deliveries)
	f.traceCapture(&c, now) // trace.go
	return nil
}

// keepSample keeps ev as its project's latest of its trigger (the sample
// of test requests), off the capture's response path.
func (f *Fanout) keepSample(ev *webhook.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.store.Samples.Keep(ctx, []*webhook.Event{ev}, LatestEventTTL); err != nil {
		f.log.Debug("remembering the latest event for test requests failed", zap.Error(err))
	}
}
