package fanout

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// The inbox holds the events this process's captures took for its
// fan-out as they stored them (Store.AddEventFor): in a steady trickle,
// the fan-out then gets each event without a read of its own, a round trip
// and a wake-up fewer per event. Only an idle fan-out takes events so: a
// busy one reads them in batches, which costs Redis less per event. The
// events are pending for the fan-out's consumer in Redis meanwhile; a
// process that stops with some still here leaves them to be claimed, as
// any pending work.

type inbox struct {
	mu   sync.Mutex
	msgs []redisstore.EventMsg
	// open is set while HandStep's loop runs, busy while it fans out.
	open, busy atomic.Bool
	wake       chan struct{}
}

// Running tells whether the fan-out's loops run.
func (f *Fanout) Running() bool { return f.in.open.Load() }

// Accepting tells whether a capture should take an event for this
// fan-out: its inbox loop runs, idle.
func (f *Fanout) Accepting() bool {
	if !f.in.open.Load() || f.in.busy.Load() {
		return false
	}
	f.in.mu.Lock()
	defer f.in.mu.Unlock()
	return len(f.in.msgs) == 0
}

// Hand gives the fan-out an event a capture took for it.
func (f *Fanout) Hand(m redisstore.EventMsg) {
	f.in.mu.Lock()
	f.in.msgs = append(f.in.msgs, m)
	f.in.mu.Unlock()
	select {
	case f.in.wake <- struct{}{}:
	default:
	}
}

// HandStep fans out the events handed over so far, a batch per shard;
// the runtime calls it in a loop. It waits for events, or for the loop's
// end.
func (f *Fanout) HandStep(ctx context.Context) (time.Duration, error) {
	f.in.open.Store(true)
	defer func() {
		if ctx.Err() != nil { // the loop ends
			f.in.open.Store(false)
		}
	}()
	select {
	case <-f.in.wake:
	case <-ctx.Done():
		return 0, nil
	}
	f.in.busy.Store(true)
	defer f.in.busy.Store(false)
	f.in.mu.Lock()
	msgs := f.in.msgs
	f.in.msgs = nil
	f.in.mu.Unlock()
	for len(msgs) > 0 {
		shard := msgs[0].Shard
		var batch, rest []redisstore.EventMsg
		for _, m := range msgs {
			if m.Shard == shard {
				batch = append(batch, m)
			} else {
				rest = append(rest, m)
			}
		}
		if err := f.FanOut(ctx, batch); err != nil {
			// Pending for our consumer: the janitor claims them after the
			// lease, as any work left pending.
			return 0, err
		}
		msgs = rest
	}
	return 0, nil
}
