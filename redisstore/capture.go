package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Captured is an event fanned out as it is captured (Queue.Capture): its
// deliveries go on the ready stream in the capture's own call, and the
// event never enters the events stream, so it costs neither a fan-out read
// nor a second script. A process does this while its fan-out runs and
// knows the hooks; otherwise events are queued for the fan-out (AddEvent).
type Captured struct {
	Event *webhook.Event
	// Deliveries are what the event makes, as Fanned's: the first Checked,
	// the hooks', share the event's payload and are checked in its
	// recursion chain; the rest (chat messages) have bodies of their own.
	Deliveries []webhook.Delivery
	Checked    int
	// Ordered, when set, tells for each delivery whether its hook is
	// ordered: those go to the shard's ordered inbox (ordered.go), as
	// Fanned's, and always reference the stored payload.
	Ordered []bool
	// Verdicts and Taken are Capture's answer: the chain's verdict on each
	// checked delivery (only the allowed ones were queued), and the
	// deliveries taken for the HandOff's consumer, bodies filled in.
	Verdicts []ChainVerdict
	Taken    []DeliveryMsg
}

// ChainRule is the recursion guard's rule: how long a chain remembers its
// hooks, and how many it may trigger.
type ChainRule struct {
	Window   time.Duration
	MaxHooks int
}

// Capture queues the deliveries of a captured event in one script
// (lua/capture.lua), in the shard of its chain, after checking them in the
// chain: the payload is stored once when two deliveries or more share it,
// inline in a lone one. With ReplicaAcks set it also waits for the
// replicas, as AddEvent does. Capture calls of concurrent captures share
// pipelines. It may take the deliveries for ho's consumer at once: those
// are in c.Taken, pending for the consumer, even when the replicas failed
// to acknowledge them.
func (q *Queue) Capture(ctx context.Context, c *Captured, rule ChainRule, ho HandOff) error {
	e := c.Event
	chain := e.Chain
	if chain == "" {
		chain = e.ID
	}
	shard := ShardOf(chain, q.shards)
	own, root, over, field := q.chainTarget(shard, chain)
	keys := []string{q.keys.Ready(shard), q.keys.Refs(shard), q.keys.Payload(shard, e.ID), own, root, over,
		q.keys.OrderedInbox(shard)}
	args := make([]any, 0, 26+c.Checked+2*len(c.Deliveries))
	args = append(args, "event", e.ID, "body", []byte(e.Body), "now", time.Now().UnixMilli(), "at", e.At.UnixMilli(),
		"window", rule.Window.Milliseconds(), "max_hooks", rule.MaxHooks, "chain", chain, "field", field,
		"take", min(ho.Max, len(c.Deliveries)), "deliver_group", GroupDeliver, "consumer", ho.Consumer,
		"checked", c.Checked, "|")
	for j := range c.Checked {
		args = append(args, c.Deliveries[j].HookID)
	}
	for j := range c.Deliveries {
		kind, doc := deliveryArg(&c.Deliveries[j], j < len(c.Ordered) && c.Ordered[j])
		args = append(args, kind, doc)
	}
	var cmd *redis.Cmd
	op, err := q.events.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = captureScript.queue(ctx, p, eval, keys, args...)
	})
	var res []any
	if err == nil {
		res, err = cmd.Slice()
	}
	if err == nil {
		err = c.read(shard, res)
	}
	if err == nil {
		err = q.fillPayloads(ctx, shard, c.Taken)
	}
	if err != nil {
		return fmt.Errorf("queueing the deliveries of event %s: %w", e.ID, err)
	}
	if q.replicaAcks > 0 {
		wait := op.tail.(*redis.Cmd)
		if n, _ := wait.Int64(); n < int64(q.replicaAcks) {
			return fmt.Errorf("queueing the deliveries of event %s: %d of %d replicas acknowledged them within %s",
				e.ID, n, q.replicaAcks, q.replicaTimeout)
		}
	}
	return nil
}

// deliveryArg is how lua/capture.lua and lua/fan_out.lua take a delivery:
// 's' and its document without its end for a delivery of the event's
// payload ('r' when its hook is ordered), 'o' and its whole document for
// one with a body of its own.
func deliveryArg(d *webhook.Delivery, ordered bool) (kind, doc string) {
	switch {
	case !d.Shared:
		return "o", EncodeDelivery(d)
	case ordered:
		return "r", deliveryHead(d)
	}
	return "s", deliveryHead(d)
}

// read takes lua/capture.lua's reply.
func (c *Captured) read(shard int, res []any) error {
	if len(res) != 3 {
		return fmt.Errorf("unexpected reply %v", res)
	}
	vs, _ := res[0].([]any)
	c.Verdicts = make([]ChainVerdict, len(vs))
	for j, v := range vs {
		n, _ := v.(int64)
		c.Verdicts[j] = ChainVerdict(n)
	}
	shared, _ := res[2].(int64)
	list, _ := res[1].([]any)
	c.Taken = make([]DeliveryMsg, 0, len(list))
	var body json.RawMessage // the payload, copied once: the caller's buffer may be reused
	for _, t := range list {
		pair, ok := t.([]any)
		if !ok || len(pair) != 2 {
			return fmt.Errorf("unexpected entry taken %v", t)
		}
		place, ours := pair[1].(int64)
		if !ours {
			id, doc, err := entryField(t, "d")
			if err != nil {
				return err
			}
			c.Taken = append(c.Taken, deliveryMsg(shard, id, doc))
			continue
		}
		id, _ := pair[0].(string)
		if place < 1 || int(place) > len(c.Deliveries) {
			return fmt.Errorf("entry taken %s: no delivery %d", id, place)
		}
		d := c.Deliveries[place-1]
		if d.Shared {
			// The payload is the event's: shared as stored, or inline.
			if body == nil {
				body = bytes.Clone(c.Event.Body)
			}
			d.Shared, d.Body = shared == 1, body
		}
		c.Taken = append(c.Taken, DeliveryMsg{Shard: shard, StreamID: id, Delivery: d})
	}
	return nil
}
