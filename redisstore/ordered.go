package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Ordered is the queues of ordered hooks: each hook's deliveries, by the
// capture time of their events, sent one at a time by whichever process
// holds the head's lease (keys.go lists the keys).
//
// An event's deliveries to ordered hooks leave the fan-out in its shard's
// inbox and move from there to their hooks' queues (MoveInbox), where
// each is keyed by its event's ID: a UUIDv7, so keys sort by capture time.
// A head may go once nothing captured before it can still join the queue:
// its capture time is below the watermark, the earliest of the processes'
// capture marks (PublishMark, Marks) and of what waits in the shards to be
// fanned out or moved (Bound). Take leases the heads that may go; Settle
// records an attempt and leases the next head at once.
type Ordered struct{ *conn }

// OrderedEntry is a delivery added to an ordered hook's queue: its order
// key, the shard of its event, and the delivery with its payload.
type OrderedEntry struct {
	Key      string
	Shard    int
	Delivery webhook.Delivery
}

// InboxMsg is a delivery waiting in a shard's ordered inbox, its payload
// filled in. Err is set for an entry that cannot be moved as it is (its
// payload is gone, or it does not decode): it moves without a body, to be
// dead-lettered when its turn comes.
type InboxMsg struct {
	Shard    int
	ID       string
	EventID  string
	Delivery webhook.Delivery
	Err      error
}

// orderedDoc is how a queue holds a delivery: "<shard>|<delivery>", the
// payload in the delivery (each ordered hook keeps its own copy).
func orderedDoc(shard int, d *webhook.Delivery) string {
	c := *d
	c.Shared = false
	return strconv.Itoa(shard) + "|" + EncodeDelivery(&c)
}

// parseOrderedDoc is orderedDoc's inverse.
func parseOrderedDoc(doc string) (int, webhook.Delivery, error) {
	sh, enc, ok := strings.Cut(doc, "|")
	shard, err := strconv.Atoi(sh)
	if !ok || err != nil || shard < 0 || shard >= MaxShards {
		return 0, webhook.Delivery{}, fmt.Errorf("ordered delivery %.40q: bad shard", doc)
	}
	d, err := DecodeDelivery(enc)
	return shard, d, err
}

// inboxScan bounds the entries of a shard's inbox one move reads.
const inboxScan = 200

// ReadInbox reads up to inboxScan entries of each shard's ordered inbox,
// with their payloads.
func (o *Ordered) ReadInbox(ctx context.Context) ([]InboxMsg, error) {
	n := o.readShards()
	cmds := make([]*redis.XMessageSliceCmd, n)
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.XRangeN(ctx, o.keys.OrderedInbox(i), "-", "+", inboxScan)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the ordered inboxes: %w", err)
	}
	var out []InboxMsg
	for i, c := range cmds {
		first := len(out)
		for _, m := range c.Val() {
			f := fields(m.Values)
			msg := InboxMsg{Shard: i, ID: m.ID, EventID: f.str("ev")}
			msg.Delivery, msg.Err = DecodeDelivery(f.str("d"))
			out = append(out, msg)
		}
		if err := o.fillInbox(ctx, i, out[first:]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillInbox reads the shared payloads of one shard's inbox entries.
func (o *Ordered) fillInbox(ctx context.Context, shard int, msgs []InboxMsg) error {
	dm := make([]DeliveryMsg, len(msgs))
	for i := range msgs {
		dm[i] = DeliveryMsg{Shard: shard, StreamID: msgs[i].ID, Delivery: msgs[i].Delivery, Err: msgs[i].Err}
	}
	q := Queue{conn: o.conn}
	if err := q.fillPayloads(ctx, shard, dm); err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Delivery, msgs[i].Err = dm[i].Delivery, dm[i].Err
	}
	return nil
}

// MoveInbox adds inbox entries to their hooks' queues, keyed by their
// event IDs, then takes them off the inboxes: moved twice (two processes
// at once), an entry is added and released once. An entry whose payload
// is gone moves without a body. It returns how many were added, and how
// many of those came after a later delivery of their hook had gone (late:
// their capture was not known in time).
func (o *Ordered) MoveInbox(ctx context.Context, msgs []InboxMsg) (added, late int, err error) {
	if len(msgs) == 0 {
		return 0, 0, nil
	}
	byHook := map[int64][]OrderedEntry{}
	var hooks []int64
	for _, m := range msgs {
		d := m.Delivery
		if d.HookID == 0 {
			continue // undecodable: released below
		}
		if m.Err != nil {
			d.Body = nil
		}
		if _, ok := byHook[d.HookID]; !ok {
			hooks = append(hooks, d.HookID)
		}
		byHook[d.HookID] = append(byHook[d.HookID], OrderedEntry{Key: d.EventID, Shard: m.Shard, Delivery: d})
	}
	cmds, err := runScripts(ctx, o.rdb, len(hooks), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return o.queueAdd(ctx, p, eval, hooks[i], byHook[hooks[i]])
	})
	if err != nil {
		return 0, 0, fmt.Errorf("adding %d deliveries to ordered queues: %w", len(msgs), err)
	}
	for _, c := range cmds {
		r, _ := c.Int64Slice()
		if len(r) == 2 {
			added, late = added+int(r[0]), late+int(r[1])
		}
	}
	byShard := map[int][]any{}
	var shards []int
	for _, m := range msgs {
		if _, ok := byShard[m.Shard]; !ok {
			shards = append(shards, m.Shard)
			byShard[m.Shard] = []any{o.keys.PayloadPrefix(m.Shard)}
		}
		byShard[m.Shard] = append(byShard[m.Shard], m.ID, m.EventID)
	}
	_, err = runScripts(ctx, o.rdb, len(shards), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		sh := shards[i]
		return dropOrdinScript.queue(ctx, p, eval, []string{o.keys.OrderedInbox(sh), o.keys.Refs(sh)}, byShard[sh]...)
	})
	if err != nil {
		return added, late, fmt.Errorf("taking %d deliveries off the ordered inboxes: %w", len(msgs), err)
	}
	return added, late, nil
}

// Add adds deliveries to the queue of ordered hook hookID under their
// keys (the tail, for a fresh key); a key already there is left alone.
func (o *Ordered) Add(ctx context.Context, hookID int64, es []OrderedEntry) (added int, err error) {
	var cmd *redis.Cmd
	_, err = o.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = o.queueAdd(ctx, p, eval, hookID, es)
	})
	var r []int64
	if err == nil {
		r, err = cmd.Int64Slice()
	}
	if err != nil {
		return 0, fmt.Errorf("adding %d deliveries to the ordered queue of hook %d: %w", len(es), hookID, err)
	}
	return int(r[0]), nil
}

func (o *Ordered) queueAdd(ctx context.Context, p redis.Pipeliner, eval bool, hookID int64, es []OrderedEntry) *redis.Cmd {
	args := make([]any, 0, 1+2*len(es))
	args = append(args, hookID)
	for i := range es {
		args = append(args, es[i].Key, orderedDoc(es[i].Shard, &es[i].Delivery))
	}
	keys := []string{o.keys.OrderedReady(hookSlotOf(hookID)), o.keys.Ordered(hookID), o.keys.OrderedDocs(hookID),
		o.keys.OrderedState(hookID)}
	return ordAddScript.queue(ctx, p, eval, keys, args...)
}

// Waiting tells whether any ordered queue or inbox holds a delivery: a
// process that knows no ordered hook still sends what is left of queues
// (a hook made unordered), and looks no further when there is none.
func (o *Ordered) Waiting(ctx context.Context) (bool, error) {
	var cmds []*redis.IntCmd
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j := range HookSlots {
			cmds = append(cmds, p.ZCard(ctx, o.keys.OrderedReady(j)))
		}
		for i := range o.readShards() {
			cmds = append(cmds, p.XLen(ctx, o.keys.OrderedInbox(i)))
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("looking for ordered deliveries: %w", err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}

// boundScan bounds the waiting entries of a shard Bound reads: beyond it,
// ordered heads wait until the fan-out catches up.
const boundScan = 1000

// Bound returns the earliest capture time (ms) of what waits in the
// shards to be fanned out or moved to an ordered queue: math.MaxInt64
// when nothing waits, and hold when a shard has more than boundScan
// entries waiting (ordered heads then wait for the fan-out to catch up).
func (o *Ordered) Bound(ctx context.Context) (ms int64, hold bool, err error) {
	n := o.readShards()
	cmds, err := runScripts(ctx, o.rdb, n, func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		return ordBoundScript.queue(ctx, p, eval, []string{o.keys.Events(i), o.keys.OrderedInbox(i)}, boundScan)
	})
	if err != nil {
		return 0, false, fmt.Errorf("reading what waits to be fanned out: %w", err)
	}
	ms = math.MaxInt64
	for _, c := range cmds {
		v, _ := c.Int64()
		switch {
		case v == -2:
			hold = true
		case v >= 0 && v < ms:
			ms = v
		}
	}
	return ms, hold, nil
}

// PublishMark records consumer's capture mark (ms): it holds no event
// captured before it that is not in Redis yet. The mark counts until
// expires, after which the process is taken for dead.
func (o *Ordered) PublishMark(ctx context.Context, consumer string, mark, expires time.Time) error {
	v := strconv.FormatInt(mark.UnixMilli(), 10) + ":" + strconv.FormatInt(expires.UnixMilli(), 10)
	if err := o.rdb.HSet(ctx, o.keys.CaptureMarks(), consumer, v).Err(); err != nil {
		return fmt.Errorf("publishing the capture mark: %w", err)
	}
	return nil
}

// Marks returns the earliest capture mark of the processes alive at now
// (math.MaxInt64 when there is none), forgetting those expired.
func (o *Ordered) Marks(ctx context.Context, now time.Time) (int64, error) {
	all, err := o.rdb.HGetAll(ctx, o.keys.CaptureMarks()).Result()
	if err != nil {
		return 0, fmt.Errorf("reading the capture marks: %w", err)
	}
	earliest := int64(math.MaxInt64)
	var dead []string
	for consumer, v := range all {
		m, e, _ := strings.Cut(v, ":")
		mark, err1 := strconv.ParseInt(m, 10, 64)
		exp, err2 := strconv.ParseInt(e, 10, 64)
		if err1 != nil || err2 != nil || exp < now.UnixMilli() {
			dead = append(dead, consumer)
			continue
		}
		earliest = min(earliest, mark)
	}
	if len(dead) > 0 {
		o.rdb.HDel(ctx, o.keys.CaptureMarks(), dead...) // a failure only keeps them for the next reader
	}
	return earliest, nil
}
