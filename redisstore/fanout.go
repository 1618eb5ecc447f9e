package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Fanned is one event's fan-out: the deliveries it makes.
type Fanned struct {
	Shard    int
	StreamID string
	EventID  string
	// Chain is the event's X-Gitlab-Event-UUID. The first Checked
	// deliveries (those of hooks) are checked and registered in its
	// recursion chain; the rest (chat messages) are not.
	Chain   string
	Checked int
	// Deliveries are queued, but for the checked ones the chain refuses.
	Deliveries []webhook.Delivery
	// Ordered, when set, tells for each delivery whether its hook is
	// ordered: those go to the shard's ordered inbox (ordered.go), not to
	// the ready stream. At is the event's capture time, which they carry.
	Ordered []bool
	At      time.Time
	// Verdicts and Already are FanOut's answer: the chain's verdict on
	// each checked delivery (only the allowed ones were queued), and
	// whether another consumer had fanned the event out already (then
	// nothing was queued, and Verdicts is empty).
	Verdicts []ChainVerdict
	Already  bool
	// Taken are the deliveries FanOut took for the HandOff's consumer,
	// payloads filled in: they are pending for it, read by no one else.
	Taken []DeliveryMsg
}

// HandOff asks FanOut to take up to Max of the deliveries it queues for
// Consumer (of GroupDeliver) at once, with their payload, in the same
// script: a process whose workers are idle then needs no read of its own
// (a round trip, and another for the payloads) to start them.
type HandOff struct {
	Consumer string
	Max      int
}

// FanOut fans each event out (lua/fan_out.lua), atomically per event: an
// event, its chain and its deliveries share a shard. It takes one round
// trip, and sets each event's Verdicts and Already, and Taken when ho asks
// for deliveries.
func (q *Queue) FanOut(ctx context.Context, evs []Fanned, rule ChainRule, ho HandOff) error {
	return q.fanOut(ctx, evs, rule, ho, time.Now())
}

// fanOut is FanOut at a given time.
func (q *Queue) fanOut(ctx context.Context, evs []Fanned, rule ChainRule, ho HandOff, now time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	room := ho.Max
	takes := make([]int, len(evs))
	for i := range evs {
		takes[i] = min(room, len(evs[i].Deliveries))
		room -= takes[i]
	}
	cmds, err := runScripts(ctx, q.rdb, len(evs), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		f := &evs[i]
		own, root, over, field := q.chainTarget(f.Shard, f.Chain)
		args := make([]any, 0, 29+f.Checked+2*len(f.Deliveries))
		args = append(args, "group", GroupFanout, "entry", f.StreamID, "event", f.EventID,
			"prefix", q.keys.PayloadPrefix(f.Shard), "now", now.UnixMilli(), "window", rule.Window.Milliseconds(),
			"max_hooks", rule.MaxHooks, "chain", f.Chain, "field", field, "take", takes[i],
			"deliver_group", GroupDeliver, "consumer", ho.Consumer, "checked", f.Checked, "at", f.At.UnixMilli(), "|")
		for j := range f.Checked {
			args = append(args, f.Deliveries[j].HookID)
		}
		for j := range f.Deliveries {
			kind, doc := deliveryArg(&f.Deliveries[j], j < len(f.Ordered) && f.Ordered[j])
			args = append(args, kind, doc)
		}
		keys := []string{q.keys.Events(f.Shard), q.keys.Ready(f.Shard), q.keys.Refs(f.Shard), own, root, over,
			q.keys.OrderedInbox(f.Shard)}
		return fanOutScript.queue(ctx, p, eval, keys, args...)
	})
	if err != nil {
		return fmt.Errorf("queueing the deliveries of %d events: %w", len(evs), err)
	}
	for i, c := range cmds {
		if err := evs[i].read(c); err != nil {
			return fmt.Errorf("queueing the deliveries of event %s: %w", evs[i].EventID, err)
		}
	}
	return q.fillTaken(ctx, evs)
}

// read takes lua/fan_out.lua's reply.
func (f *Fanned) read(c *redis.Cmd) error {
	res, err := c.Slice()
	if err != nil {
		return err
	}
	if len(res) == 1 {
		f.Already = true
		return nil
	}
	if len(res) != 4 {
		return fmt.Errorf("unexpected reply %v", res)
	}
	vs, _ := res[1].([]any)
	f.Verdicts = make([]ChainVerdict, len(vs))
	for j, v := range vs {
		n, _ := v.(int64)
		f.Verdicts[j] = ChainVerdict(n)
	}
	if f.Taken, err = deliveryEntries(f.Shard, res[2]); err != nil {
		return err
	}
	if len(f.Taken) == 0 {
		return nil
	}
	// The event's payload, when an entry taken shares it.
	var ev string
	var payload []byte
	if p, _ := res[3].([]any); len(p) == 2 {
		ev, _ = p[0].(string)
		body, _ := p[1].(string)
		payload = []byte(body)
	}
	for j := range f.Taken {
		if d := &f.Taken[j].Delivery; f.Taken[j].Err == nil && d.Shared && d.EventID == ev {
			d.Body = json.RawMessage(payload)
		}
	}
	return nil
}

// fillTaken reads the payloads of the deliveries the fan-out script took
// that share another event's payload (older deliveries taken with its
// own): the script returns only its own event's.
func (q *Queue) fillTaken(ctx context.Context, evs []Fanned) error {
	for i := range evs {
		// No I/O unless a delivery taken still lacks its payload.
		if err := q.fillPayloads(ctx, evs[i].Shard, evs[i].Taken); err != nil {
			return err
		}
	}
	return nil
}
