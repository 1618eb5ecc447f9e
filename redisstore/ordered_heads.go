package redisstore

// The heads of the ordered queues: taking them under a lease, settling an
// attempt (and taking the next), dead-lettering, reading and dropping a
// queue (Ordered is in ordered.go).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

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
		args = append(args, "health", "1", "ok", ok, "class", out.Class, "status", out.Status)
		args = append(args, s.Health.args()...)
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
