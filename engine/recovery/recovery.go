// Package recovery brings back work that would otherwise wait or be lost:
// the mover puts scheduled deliveries (retries, disabled hooks, rate
// limits) back on the ready stream when due; the janitor claims the events
// and deliveries a dead consumer left pending past their lease; deliveries
// handed out too often are dead-lettered as poison; dead letters are
// redriven on request. (A consumer group lost with a Redis restart is
// re-created by the store's reads: NOGROUP.)
package recovery

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/fanout"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// MaxHandouts is how often a delivery may be handed out unsettled before
// it is poison.
const MaxHandouts = 5

// Config is what recovery follows of the runtime's settings.
type Config struct {
	// Lease is how long work may stay with a consumer before it is claimed.
	Lease time.Duration
	// ClaimInterval is how often pending work of dead consumers is claimed.
	ClaimInterval time.Duration
	// MaxHandouts is how often a delivery may be handed to a consumer
	// (crashes included) before it is dead-lettered as poison.
	MaxHandouts int
	// Log bounds the hooks' logs, which the janitor trims by age.
	Log redisstore.LogLimits
}

// Store is what recovery reads and writes in Redis.
type Store struct {
	Queue       *redisstore.Queue
	DeadLetters *redisstore.DeadLetters
	Log         *redisstore.Log
	Legacy      *redisstore.Legacy
}

// Recovery runs the mover and the janitor of one runtime.
type Recovery struct {
	store    Store
	consumer string
	log      *zap.Logger
	hooks    func() *webhook.HookSet
	fan      *fanout.Fanout
	deliver  *delivery.Deliverer
	cfg      atomic.Pointer[Config]
	// trimmed is when the janitor last trimmed the logs by age.
	trimmed time.Time
}

// New builds the recovery of a runtime: claimed events go to fan, claimed
// deliveries to deliver.
func New(store Store, consumer string, log *zap.Logger, hooks func() *webhook.HookSet,
	fan *fanout.Fanout, deliver *delivery.Deliverer) *Recovery {
	return &Recovery{store: store, consumer: consumer, log: log, hooks: hooks, fan: fan, deliver: deliver}
}

// Configure swaps in new settings.
func (r *Recovery) Configure(c Config) { r.cfg.Store(&c) }

// moveBatch is how many scheduled deliveries one step moves at most.
const moveBatch = 500

// MoveStep puts due deliveries back on the ready stream and returns how
// long to wait for the next one: at once while a full batch was moved,
// else until the next is due (at most a second). On an empty schedule it
// waits itself, until this process schedules a delivery (idleMove at most).
func (r *Recovery) MoveStep(ctx context.Context) (time.Duration, error) {
	moved, next, err := r.store.Queue.MoveDue(ctx, time.Now(), moveBatch)
	switch {
	case err != nil:
		return 0, err
	case moved == moveBatch:
		return 0, nil
	case next.IsZero():
		// Nothing scheduled: wait for this process to schedule something,
		// or for idleMove, in case another process does.
		t := time.NewTimer(idleMove)
		defer t.Stop()
		select {
		case <-r.store.Queue.Scheduled():
		case <-t.C:
		case <-ctx.Done():
		}
		return 0, nil
	}
	return min(max(time.Until(next), 5*time.Millisecond), time.Second), nil
}

// idleMove is how long the mover waits on an empty schedule for a delivery
// another process schedules (this process's own wake it at once): a retry
// that process schedules and then cannot move itself (it stopped) is
// late by this much at most.
const idleMove = 5 * time.Second

// ClaimStep claims work that another consumer (a crashed or stopped
// process) left pending for longer than the lease; work aborts the
// deliveries it starts. It returns the claim interval. Nothing is claimed
// while deliveries are held: claimed work would only wait, and its lease
// run out meanwhile. A failure is logged; the next step tries again.
func (r *Recovery) ClaimStep(ctx, work context.Context) (time.Duration, error) {
	cfg := r.cfg.Load()
	if r.deliver.Holding() {
		return cfg.ClaimInterval, nil
	}
	if err := r.claimAll(ctx, work, cfg.Lease); err != nil && ctx.Err() == nil {
		r.log.Warn("claiming abandoned work failed", zap.Error(err))
	}
	return cfg.ClaimInterval, nil
}

// claimBatch is how many entries one claim takes at most.
const claimBatch = 100

func (r *Recovery) claimAll(ctx, work context.Context, lease time.Duration) error {
	if err := r.housekeeping(ctx, work, lease); err != nil {
		return err
	}
	for shard := range r.store.Queue.ReadShards() {
		err := claimPages(ctx, r.consumer, lease, shard, r.store.Queue.ClaimEvents, func(msgs []redisstore.EventMsg) error {
			r.log.Info("claimed abandoned events", zap.Int("count", len(msgs)), zap.Int("shard", shard))
			return r.fan.FanOut(ctx, msgs)
		})
		if err != nil {
			return err
		}
		err = claimPages(ctx, r.consumer, lease, shard, r.store.Queue.ClaimDeliveries, func(msgs []redisstore.DeliveryMsg) error {
			r.log.Info("claimed abandoned deliveries", zap.Int("count", len(msgs)), zap.Int("shard", shard))
			r.deliver.Dispatch(ctx, work, r.withoutPoison(ctx, msgs))
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// logTrimInterval is how often the janitor trims the logs that stopped
// growing (growing logs are trimmed as they grow).
const logTrimInterval = time.Minute

// housekeeping is the janitor's other work: it records the shard count
// and learns whether shards beyond this process's hold work (after
// `shards` was lowered) and reads them; it moves work left in the layout
// before shards; and it trims idle logs by age.
func (r *Recovery) housekeeping(ctx, work context.Context, lease time.Duration) error {
	if err := r.store.Queue.NoteShards(ctx); err != nil {
		return err
	}
	for shard := r.store.Queue.Shards(); shard < r.store.Queue.ReadShards(); shard++ {
		if err := r.drainShard(ctx, work, shard); err != nil {
			return err
		}
	}
	hooks := r.hooks().All()
	ids := make([]int64, len(hooks))
	for i, h := range hooks {
		ids[i] = h.ID
	}
	if n, err := r.store.Legacy.Drain(ctx, lease, ids); err != nil {
		return err
	} else if n > 0 {
		r.log.Info("moved work from the layout before shards", zap.Int("entries", n))
	}
	if cfg := r.cfg.Load(); time.Since(r.trimmed) >= logTrimInterval && cfg.Log.MaxEntries > 0 {
		if _, err := r.store.Log.Trim(ctx, cfg.Log, time.Now()); err != nil {
			return err
		}
		r.trimmed = time.Now()
	}
	return nil
}

// drainShard reads a page of new events and deliveries of a shard that no
// loop of this process reads.
func (r *Recovery) drainShard(ctx, work context.Context, shard int) error {
	evs, err := r.store.Queue.ReadEvents(ctx, shard, r.consumer, ">", claimBatch, -1)
	if err == nil {
		err = r.fan.FanOut(ctx, evs)
	}
	if err != nil {
		return err
	}
	ds, err := r.store.Queue.ReadDeliveries(ctx, shard, r.consumer, ">", claimBatch, -1)
	if err != nil {
		return err
	}
	r.deliver.Dispatch(ctx, work, ds)
	return nil
}

// claimFunc claims up to count entries idle for minIdle, from start; it
// returns where the next page starts ("0-0": no more).
type claimFunc[M any] func(ctx context.Context, shard int, consumer string, minIdle time.Duration, start string, count int64) ([]M, string, error)

// claimPages claims a stream's abandoned entries page by page and hands
// each non-empty page to use.
func claimPages[M any](ctx context.Context, consumer string, lease time.Duration, shard int, claim claimFunc[M], use func([]M) error) error {
	for start := "0-0"; ; {
		msgs, next, err := claim(ctx, shard, consumer, lease, start, claimBatch)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			if err := use(msgs); err != nil {
				return err
			}
		}
		if start = next; start == "0-0" {
			return nil
		}
	}
}

// withoutPoison dead-letters claimed deliveries that were handed out too
// often (each time a consumer died or stalled with them): they would keep
// taking workers down.
func (r *Recovery) withoutPoison(ctx context.Context, msgs []redisstore.DeliveryMsg) []redisstore.DeliveryMsg {
	counts, err := r.store.Queue.DeliveryCounts(ctx, msgs[0].Shard, msgs[0].StreamID, msgs[len(msgs)-1].StreamID)
	if err != nil {
		r.log.Warn("reading delivery counts failed", zap.Error(err))
		return msgs
	}
	limit := int64(r.cfg.Load().MaxHandouts)
	keep := msgs[:0]
	for _, m := range msgs {
		hook, ok := r.hooks().Get(m.Delivery.HookID)
		if counts[m.StreamID] <= limit || !ok || m.Err != nil {
			keep = append(keep, m)
			continue
		}
		r.deliver.GiveUpPoison(&m, hook, counts[m.StreamID])
	}
	return keep
}

// Redrive puts dead letters back in the queue as first attempts: the given
// IDs, or all of them.
func (r *Recovery) Redrive(ctx context.Context, ids []string, all bool) (int, error) {
	if !all {
		return r.store.DeadLetters.Redrive(ctx, ids...)
	}
	total := 0
	for after := "-"; ; {
		dls, err := r.store.DeadLetters.List(ctx, after, 500)
		if err != nil || len(dls) == 0 {
			return total, err
		}
		batch := make([]string, 0, len(dls))
		for _, d := range dls {
			batch = append(batch, d.ID)
		}
		n, err := r.store.DeadLetters.Redrive(ctx, batch...)
		total += n
		if err != nil {
			return total, err
		}
		after = dls[len(dls)-1].ID
	}
}
