package redisstore

import (
	"context"
	"errors"
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

// Head is the head of an ordered hook's queue, leased to the caller by
// Token. Disabled says the hook is disabled until re-enabled (the head is
// to be dead-lettered); Gone, that its document was missing (it was
// dropped, nothing is leased). Err is set for a document that does not
// decode.
type Head struct {
	HookID   int64
	Key      string
	Token    string
	Shard    int
	Delivery webhook.Delivery
	Disabled bool
	Gone     bool
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

// takeScan bounds the hooks of a slot one Take looks at.
const takeScan = 100

// Take leases up to max heads, over the hook slots given, that may go at
// now below watermark w (ms), for lease, with tokens starting token.
func (o *Ordered) Take(ctx context.Context, slots []int, now time.Time, w int64, max int, token string,
	lease time.Duration) ([]Head, error) {
	if max <= 0 || len(slots) == 0 {
		return nil, nil
	}
	cmds, err := runScripts(ctx, o.rdb, len(slots), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		j := slots[i]
		return ordTakeScript.queue(ctx, p, eval, []string{o.keys.OrderedReady(j)}, "now", now.UnixMilli(), "w", w,
			"max", max, "scan", takeScan, "token", token, "lease", lease.Milliseconds(), "prefix", o.keys.orderedHookPrefix(j))
	})
	if err != nil {
		return nil, fmt.Errorf("taking ordered heads: %w", err)
	}
	var out []Head
	for _, c := range cmds {
		list, _ := c.Slice()
		for _, e := range list {
			r, _ := e.([]any)
			if len(r) != 4 {
				continue
			}
			id, _ := strconv.ParseInt(str(r[0]), 10, 64)
			out = append(out, newHead(id, str(r[1]), token+":"+str(r[0]), str(r[2]), str(r[3])))
		}
	}
	return out, nil
}

func str(v any) string { s, _ := v.(string); return s }

func newHead(hookID int64, key, token, doc, verdict string) Head {
	h := Head{HookID: hookID, Key: key, Token: token, Disabled: verdict == "disabled", Gone: verdict == "gone"}
	if !h.Gone {
		h.Shard, h.Delivery, h.Err = parseOrderedDoc(doc)
	}
	if h.Delivery.HookID == 0 {
		h.Delivery.HookID = hookID
	}
	return h
}

// OrderedNext is what becomes of a head after an attempt.
type OrderedNext string

// Outcomes of an ordered head.
const (
	OrderedDone    OrderedNext = "done"    // delivered: the next head may go
	OrderedRetry   OrderedNext = "retry"   // it stays the head, tried again at Due
	OrderedDead    OrderedNext = "dead"    // dead-lettered (AddDeadLetter first): the next head may go
	OrderedRelease OrderedNext = "release" // not attempted: look again at Due
)

// OrderedSettle is what Settle records of an attempt of a head.
type OrderedSettle struct {
	Next OrderedNext
	// Due is when a retried or released head may go again.
	Due time.Time
	// Retry is the head's next attempt (Next = retry).
	Retry *webhook.Delivery
	// Outcome is the attempt, for the hook's health (nil: no attempt).
	Outcome *Outcome
	Health  HealthPolicy
	// Take leases the next head, if it may go below W, under NewToken.
	Take     bool
	W        int64
	NewToken string
	Lease    time.Duration
}

// OrderedSettled is the hook's state after Settle. Stale says the caller
// had lost the head's lease (another process sends it now): nothing was
// recorded. Next is the next head, leased to the caller, when one was
// asked for and may go.
type OrderedSettled struct {
	Stale         bool
	Fails         int
	DisabledUntil time.Time
	Disabled      bool
	Event         HealthEvent
	Next          *Head
}

// Settle records the outcome of an attempt of head h (lua/ord_settle.lua).
func (o *Ordered) Settle(ctx context.Context, h *Head, s OrderedSettle) (OrderedSettled, error) {
	j := hookSlotOf(h.HookID)
	args := []any{"hook", h.HookID, "prefix", o.keys.orderedHookPrefix(j), "token", h.Token, "key", h.Key,
		"next", string(s.Next), "now", time.Now().UnixMilli(), "due", s.Due.UnixMilli(), "w", s.W,
		"newtoken", s.NewToken, "lease", max(s.Lease.Milliseconds(), 1)}
	if s.Take {
		args = append(args, "take", "1")
	}
	if s.Retry != nil {
		args = append(args, "doc", orderedDoc(h.Shard, s.Retry))
	}
	if out := s.Outcome; out != nil {
		ok := ""
		if out.Success {
			ok = "1"
		}
		pol := s.Health.healthArgs()
		args = append(args, "health", "1", "ok", ok, "class", out.Class, "status", out.Status,
			"threshold", pol[0], "base", pol[1], "max", pol[2], "mode", pol[3], "after", pol[4])
	} else {
		args = append(args, "status", "")
	}
	keys := []string{o.keys.OrderedReady(j), o.keys.Health(h.HookID), o.keys.DisabledOf(h.HookID)}
	var cmd *redis.Cmd
	_, err := o.work.do(ctx, func(p redis.Pipeliner, eval bool) {
		cmd = ordSettleScript.queue(ctx, p, eval, keys, args...)
	})
	var res []any
	if err == nil {
		res, err = cmd.Slice()
	}
	if err != nil {
		return OrderedSettled{}, fmt.Errorf("settling the ordered head of hook %d: %w", h.HookID, err)
	}
	num := func(i int) int64 { n, _ := res[i].(int64); return n }
	st := OrderedSettled{Stale: num(0) == 1, Fails: int(num(1)), Disabled: num(3) == 1, Event: HealthEvent(num(4))}
	if u := num(2); u > 0 {
		st.DisabledUntil = time.UnixMilli(u)
	}
	if len(res) == 8 {
		next := newHead(h.HookID, str(res[5]), s.NewToken, str(res[6]), str(res[7]))
		st.Next = &next
	}
	return st, nil
}

// AddDeadLetter dead-letters an ordered head in its shard, payload and
// all (lua/add_dead.lua); it returns how many of the oldest dead letters
// were trimmed for each bound.
func (o *Ordered) AddDeadLetter(ctx context.Context, h *Head, reason string, lim DeadLetterLimits, now time.Time) (byCount, byBytes int, err error) {
	lim = lim.withDefaults()
	d := h.Delivery
	d.Shared = false
	keys := []string{o.keys.Dead(h.Shard), o.keys.DeadBytes(h.Shard), o.keys.Refs(h.Shard)}
	r, err := addDeadScript.run(ctx, o.rdb, keys, o.keys.PayloadPrefix(h.Shard), EncodeDelivery(&d), reason,
		now.UnixMilli(), o.perShard(int64(lim.MaxEntries)), o.perShard(lim.MaxBytes)).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("dead-lettering the ordered head of hook %d: %w", h.HookID, err)
	}
	return int(r[0]), int(r[1]), nil
}

// OrderedState is an ordered hook's queue as the API shows it.
type OrderedState struct {
	// Pending counts the deliveries queued, the head included.
	Pending int64
	// Blocked is set while the head has failed and waits to be tried
	// again (or for the hook to come back).
	Blocked *OrderedBlock
}

// OrderedBlock is a head that failed: the delivery that holds the ones
// behind it, since when, its attempts so far, the last one's status and
// when it is tried next.
type OrderedBlock struct {
	EventID    string
	Since      time.Time
	Attempts   int
	LastStatus string
	NextAt     time.Time
}

// State reads the queue of ordered hook hookID.
func (o *Ordered) State(ctx context.Context, hookID int64) (OrderedState, error) {
	var n *redis.IntCmd
	var st *redis.SliceCmd
	_, err := o.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		n = p.ZCard(ctx, o.keys.Ordered(hookID))
		st = p.HMGet(ctx, o.keys.OrderedState(hookID), "key", "since", "status", "next")
		return nil
	})
	if err != nil {
		return OrderedState{}, fmt.Errorf("reading the ordered queue of hook %d: %w", hookID, err)
	}
	out := OrderedState{Pending: n.Val()}
	v := st.Val()
	key, since := str(v[0]), str(v[1])
	if key == "" || since == "" || out.Pending == 0 {
		return out, nil
	}
	b := &OrderedBlock{LastStatus: str(v[2])}
	if ms, err := strconv.ParseInt(since, 10, 64); err == nil {
		b.Since = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(str(v[3]), 10, 64); err == nil {
		b.NextAt = time.UnixMilli(ms)
	}
	doc, err := o.rdb.HGet(ctx, o.keys.OrderedDocs(hookID), key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return out, fmt.Errorf("reading the ordered head of hook %d: %w", hookID, err)
	}
	if _, d, err := parseOrderedDoc(doc); err == nil {
		b.EventID, b.Attempts = d.EventID, d.Attempt-1
	}
	out.Blocked = b
	return out, nil
}

// Drop deletes the queue of ordered hook hookID (the hook was deleted).
func (o *Ordered) Drop(ctx context.Context, hookID int64) error {
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, o.keys.Ordered(hookID), o.keys.OrderedDocs(hookID), o.keys.OrderedLease(hookID), o.keys.OrderedState(hookID))
		p.ZRem(ctx, o.keys.OrderedReady(hookSlotOf(hookID)), hookID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dropping the ordered queue of hook %d: %w", hookID, err)
	}
	return nil
}

// OrderedSlotOf is the hook slot of hookID, where its ordered queue is.
func OrderedSlotOf(hookID int64) int { return hookSlotOf(hookID) }
