package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// DeadLetterLimits bound the dead-letter stream: past either, its oldest
// entries are trimmed. Zero fields take the defaults.
type DeadLetterLimits struct {
	// MaxEntries caps the dead letters kept. Default: 100,000.
	MaxEntries int
	// MaxBytes caps the bytes of their documents (payload and delivery
	// fields) and reasons. Default: 256 MiB.
	MaxBytes int64
}

// Defaults of DeadLetterLimits.
const (
	DefaultMaxDeadLetters     = 100_000
	DefaultMaxDeadLetterBytes = 256 << 20
)

func (l DeadLetterLimits) withDefaults() DeadLetterLimits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxDeadLetters
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxDeadLetterBytes
	}
	return l
}

// Outcome is what to record for one delivery attempt.
type Outcome struct {
	// Success resets the hook's health.
	Success bool
	// Attempted is false for deliveries given up without an attempt (their
	// hook is disabled, they are too old): they go to the dead letters
	// without touching health.
	Attempted bool
	// Class is "client" for a 4xx (the hook is misconfigured), "gone" for
	// 410, "" otherwise.
	Class string
	// Retry schedules the next attempt at RetryAt; otherwise a failure is
	// dead-lettered with Reason.
	Retry   bool
	RetryAt time.Time
	Reason  string
	// Status is the attempt's result as text, kept as the hook's last status.
	Status string
	// At is when the attempt ended.
	At time.Time
}

// Rules are the bounds in effect when an attempt is settled.
type Rules struct {
	// Health is GitLab's auto-disabling rule.
	Health HealthPolicy
	// DeadLetters bound the dead letters, split evenly over the shards.
	DeadLetters DeadLetterLimits
	// Log bounds the hook's log the attempt's entry goes to.
	Log LogLimits
}

// Settled is a hook's state after an attempt was recorded.
type Settled struct {
	// Already is true when another consumer settled the entry first.
	Already       bool
	Fails         int
	DisabledUntil time.Time
	Disabled      bool
	// LogID is the attempt's entry in the hook's log (Settle with an entry), or
	// LogErr why it could not be added.
	LogID  int64
	LogErr error
	// TrimmedForCount and TrimmedForBytes are the oldest dead letters
	// dropped to keep the stream within its DeadLetterLimits.
	TrimmedForCount, TrimmedForBytes int
	// Event is what this attempt changed of the hook's health.
	Event HealthEvent
}

// Settle records an attempt's outcome for the ready entry of m and, when
// e is set, appends the attempt to its hook's log: the queue side in the
// delivery's shard (lua/settle.lua), the hook's health in its slot
// (lua/record_health.lua), in one round trip; outside a Cluster, in one
// script (lua/settle_health.lua). A failure that would be
// retried asks the hook's health first (one more round trip, on failures
// only): a hook it disables for good dead-letters the delivery at once,
// and a hook it disables for a while gets the retry once it is back.
func (q *Queue) Settle(ctx context.Context, m *DeliveryMsg, o Outcome, e *webhook.LogEntry, r Rules) (Settled, error) {
	d := &m.Delivery
	var st Settled
	var health *redis.Cmd
	queueHealth := func(pl redis.Pipeliner, eval bool) {
		health = queueRecordHealth(ctx, pl, eval, q.keys, d.HookID, o, r.Health)
	}
	healthFirst := o.Attempted && !o.Success && o.Retry
	if healthFirst {
		_, err := q.work.do(ctx, queueHealth)
		if err == nil {
			err = st.readHealth(health)
		}
		if err != nil {
			return Settled{}, fmt.Errorf("recording the health of hook %d: %w", d.HookID, err)
		}
		switch {
		case st.Disabled:
			o.Retry, o.Reason = false, "hook disabled"
		case st.DisabledUntil.After(o.RetryAt):
			o.RetryAt = st.DisabledUntil
		}
		health = nil
	}
	keys, args, err := q.settleArgs(m, o, e, r)
	if err != nil {
		return Settled{}, err
	}
	withHealth := (o.Attempted || o.Success) && !healthFirst
	script := settleScript
	if withHealth && !q.cluster {
		// One script: the health keys are in another slot, which only a
		// Cluster refuses.
		script, withHealth = settleHealthScript, false
		keys = append(keys, q.keys.Health(d.HookID), q.keys.DisabledOf(d.HookID))
		args = append(args, healthArgs(d.HookID, o, r.Health)...)
	}
	var settle *redis.Cmd
	_, err = q.work.do(ctx, func(pl redis.Pipeliner, eval bool) {
		settle = script.queue(ctx, pl, eval, keys, args...)
		if withHealth {
			queueHealth(pl, eval)
		}
	})
	var res []any
	if err == nil {
		res, err = settle.Slice()
	}
	if err != nil {
		return Settled{}, fmt.Errorf("settling delivery %s of hook %d: %w", m.StreamID, d.HookID, err)
	}
	st.Already = res[0].(int64) == 1
	st.TrimmedForCount, st.TrimmedForBytes = int(res[1].(int64)), int(res[2].(int64))
	if o.Retry && !st.Already {
		q.noteScheduled()
	}
	if e != nil && !st.Already {
		st.LogID, st.LogErr = logEntryNumber(res[3], d.HookID)
	}
	if len(res) > 4 {
		if err := st.readHealthReply(res[4]); err != nil {
			return st, fmt.Errorf("recording the health of hook %d: %w", d.HookID, err)
		}
	}
	if health != nil {
		if err := st.readHealth(health); err != nil {
			return st, fmt.Errorf("recording the health of hook %d: %w", d.HookID, err)
		}
	}
	return st, nil
}

// readHealth takes lua/record_health.lua's reply.
func (st *Settled) readHealth(c *redis.Cmd) error {
	v, err := c.Result()
	if err != nil {
		return err
	}
	return st.readHealthReply(v)
}

// readHealthReply reads a health reply: {fails, disabled until ms,
// permanently disabled, event}.
func (st *Settled) readHealthReply(v any) error {
	h, ok := v.([]any)
	if !ok || len(h) != 4 {
		return fmt.Errorf("unexpected health reply %v", v)
	}
	fails, _ := h[0].(int64)
	until, _ := h[1].(int64)
	permanent, _ := h[2].(int64)
	st.Fails, st.Disabled = int(fails), permanent == 1
	if until > 0 {
		st.DisabledUntil = time.UnixMilli(until)
	}
	event, _ := h[3].(int64)
	st.Event = HealthEvent(event)
	return nil
}

// settleArgs are lua/settle.lua's keys and named arguments.
func (q *Queue) settleArgs(m *DeliveryMsg, o Outcome, e *webhook.LogEntry, r Rules) ([]string, []any, error) {
	d := &m.Delivery
	ev, plen := "", 0
	if d.Shared {
		ev, plen = d.EventID, len(d.Body)
	}
	args := make([]any, 0, 40)
	args = append(args, "group", GroupDeliver, "entry", m.StreamID, "now", o.At.UnixMilli(),
		"ev", ev, "plen", plen, "prefix", q.keys.PayloadPrefix(m.Shard))
	switch {
	case o.Retry:
		nd := *d
		nd.Attempt++
		args = append(args, "next", "retry", "due", o.RetryAt.UnixMilli(), "member", EncodeDelivery(&nd))
	case !o.Success:
		dl := r.DeadLetters.withDefaults()
		args = append(args, "next", "dead", "doc", EncodeDelivery(d), "reason", o.Reason,
			"max_dead", q.perShard(int64(dl.MaxEntries)), "max_dead_bytes", q.perShard(dl.MaxBytes))
	default:
		args = append(args, "next", "done")
	}
	if e != nil {
		l, err := logArgs(e, d)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, "hook", d.HookID, "shard", m.Shard, "log_ms", l.ms,
			"log_max", r.Log.MaxEntries, "status", e.ResponseStatus, "log_entry", l.entry, "log_ev", l.ref)
	}
	keys := []string{q.keys.Ready(m.Shard), q.keys.Schedule(m.Shard), q.keys.Dead(m.Shard), q.keys.DeadBytes(m.Shard),
		q.keys.Refs(m.Shard), q.keys.HookLog(m.Shard, d.HookID), q.keys.LogTails(m.Shard)}
	return keys, args, nil
}
