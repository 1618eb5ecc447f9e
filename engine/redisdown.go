package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// ErrRedisDown is what Enqueue returns, at once, while Redis is known to be
// unreachable: the caller spools the event instead of waiting for a
// connection that is refused or hangs.
var ErrRedisDown = errors.New("redis is unreachable (not waiting for it: a probe checks it)")

// Probing while Redis is down: a check every redisProbeInterval, each
// bounded by redisProbeTimeout.
const (
	redisProbeInterval = 250 * time.Millisecond
	redisProbeTimeout  = time.Second
)

// redisDown is the "Redis is down" state of the enqueue path. An enqueue
// that fails on the connection (refused, reset, timed out) sets it; while
// it is set, a probe checks Redis every redisProbeInterval and, when the
// callers have a spool (onUp set), enqueues fail at once. The first check
// Redis answers clears it and calls onUp (which wakes the spool's
// replayer).
type redisDown struct {
	store *redisstore.Store
	log   *zap.Logger
	gauge func(float64)

	down  atomic.Bool
	since atomic.Int64           // unix nanoseconds of the last transition to down
	onUp  atomic.Pointer[func()] // nil: no spool, enqueues wait for Redis

	mu     sync.Mutex
	ctx    context.Context // ends when the runtime closes
	cancel context.CancelFunc
	probes sync.WaitGroup
}

func newRedisDown(store *redisstore.Store, log *zap.Logger) *redisDown {
	d := &redisDown{store: store, log: log}
	gauge := metrics.RedisDown.WithLabelValues(store.Keys().Namespace)
	d.gauge = gauge.Set
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// failed looks at an enqueue's error and enters the down state if it says
// Redis could not be reached.
func (d *redisDown) failed(err error) {
	if !redisstore.Unreachable(err) || !d.down.CompareAndSwap(false, true) {
		return
	}
	d.since.Store(time.Now().UnixNano())
	d.gauge(1)
	msg := "redis is unreachable: events go to the spool without waiting for it, until a probe finds it answering"
	if d.onUp.Load() == nil {
		msg = "redis is unreachable (no spool: events wait for it up to enqueue_timeout, then are lost)"
	}
	d.log.Error(msg, zap.Duration("probe_interval", redisProbeInterval), zap.Error(err))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	d.probes.Add(1)
	go d.probe()
}

// probe checks Redis until it answers, then leaves the down state.
func (d *redisDown) probe() {
	defer d.probes.Done()
	t := time.NewTicker(redisProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(d.ctx, redisProbeTimeout)
		err := d.store.EventsReachable(ctx)
		cancel()
		// An error Redis answered with is for the enqueue to meet.
		if d.ctx.Err() == nil && !redisstore.Unreachable(err) {
			d.up()
			return
		}
	}
}

func (d *redisDown) up() {
	if !d.down.CompareAndSwap(true, false) {
		return
	}
	d.gauge(0)
	d.log.Info("redis answers again: events are queued in it",
		zap.Duration("down_for", time.Since(time.Unix(0, d.since.Load()))))
	if f := d.onUp.Load(); f != nil {
		(*f)()
	}
}

// close stops the probe.
func (d *redisDown) close() {
	d.mu.Lock()
	d.cancel()
	d.mu.Unlock()
	d.probes.Wait()
	if d.down.Load() {
		d.gauge(0) // the runtime no longer enqueues
	}
}
