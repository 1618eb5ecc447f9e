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
// unreachable and its callers have a spool: they spool the event instead
// of waiting for a connection that is refused or hangs.
var ErrRedisDown = errors.New("redis is unreachable (not waiting for it: a probe checks it)")

// While Redis is down, a probe checks it every probeInterval, each check
// bounded by probeTimeout.
const (
	probeInterval = 250 * time.Millisecond
	probeTimeout  = time.Second
)

// Failover says what the runtime's callers do with the events Redis cannot
// take.
type Failover struct {
	// Spooled, when set, says the callers spool what Enqueue refuses; it
	// is called each time Redis answers again, to replay the spool at
	// once. Without it Enqueue waits for Redis up to its caller's deadline
	// even while Redis is known to be down: the event has nowhere else to
	// go.
	Spooled func()
	// Redis names the server in the redis_down metric: a URL without its
	// password. Read once; a runtime never changes servers.
	Redis string
	// Oldest, when set, returns the earliest capture time of the events
	// the spool holds: the ordered hooks wait for them.
	Oldest func() (time.Time, bool)
}

// outage is the "Redis is down" state of one runtime's enqueue path, so of
// one store: a runtime serves one Redis server and namespace. An enqueue
// that fails on the connection (refused, reset, timed out) starts it; while
// it lasts a probe checks Redis every probeInterval, and, when the callers
// have a spool, enqueues fail at once. The first check Redis answers ends
// it and wakes the spool's replayer.
type outage struct {
	store *redisstore.Store
	log   *zap.Logger

	down     atomic.Bool
	since    atomic.Int64 // unix nanoseconds of the start of the outage
	skipped  atomic.Int64 // events refused at once during this outage
	failover atomic.Pointer[Failover]
	// notify, when set, is told when an outage with a spool starts (down)
	// and when it ends: the operator's alerts.
	notify func(ctx context.Context, down bool, redis string, since time.Time)

	mu     sync.Mutex
	named  bool      // labels are fixed and counted in outageGauge
	labels [2]string // namespace and server, of the metrics
	closed bool
	ctx    context.Context // ends when the runtime closes
	cancel context.CancelFunc
	probes sync.WaitGroup
}

func newOutage(store *redisstore.Store, log *zap.Logger) *outage {
	o := &outage{store: store, log: log, labels: [2]string{store.Keys().Namespace, ""}}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o
}

// setFailover installs f; the first call names the server in the metrics.
func (o *outage) setFailover(f Failover) {
	o.failover.Store(&f)
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.named && f.Redis != "" {
		o.labels[1] = f.Redis
	}
	o.nameLocked()
}

// nameLocked fixes the metrics' labels and counts this runtime as a user
// of them; o.mu is held.
func (o *outage) nameLocked() {
	if o.named || o.closed {
		return
	}
	o.named = true
	outageGauge.use(o.labels, o.down.Load())
}

// spooled is the callers' spool wake-up, or nil without a spool.
func (o *outage) spooled() func() {
	if f := o.failover.Load(); f != nil {
		return f.Spooled
	}
	return nil
}

// refusing tells whether enqueues fail at once now.
func (o *outage) refusing() bool { return o.down.Load() && o.spooled() != nil }

// refuse counts an event refused at once for the caller to spool.
func (o *outage) refuse() {
	o.skipped.Add(1)
	metrics.EnqueuesSkipped.WithLabelValues(o.labels[0], o.labels[1]).Inc()
}

// failed looks at an enqueue's error and starts an outage if it says Redis
// could not be reached.
func (o *outage) failed(err error) {
	if !redisstore.Unreachable(err) {
		return
	}
	o.mu.Lock() // transitions happen under it
	defer o.mu.Unlock()
	if o.closed || o.down.Load() {
		return
	}
	o.nameLocked()
	o.down.Store(true)
	o.since.Store(time.Now().UnixNano())
	o.skipped.Store(0)
	outageGauge.add(o.labels, 1)
	msg := "redis is unreachable: events go to the spool without waiting for it, until a probe finds it answering"
	if o.spooled() == nil {
		msg = "redis is unreachable (no spool: each event waits for it up to enqueue_timeout, then is lost)"
	}
	o.log.Error(msg, zap.String("redis", o.labels[1]), zap.Duration("probe_interval", probeInterval), zap.Error(err))
	if o.notify != nil && o.spooled() != nil {
		o.notify(o.ctx, true, o.labels[1], time.Unix(0, o.since.Load()))
	}
	o.probes.Add(1)
	go o.probe()
}

// probe checks Redis until it answers, then ends the outage.
func (o *outage) probe() {
	defer o.probes.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(o.ctx, probeTimeout)
		err := o.store.Reachable(ctx)
		cancel()
		if o.ctx.Err() != nil {
			return
		}
		if err == nil {
			o.up()
			return
		}
	}
}

// up ends the outage: enqueues go to Redis again, and the spool is replayed.
func (o *outage) up() {
	o.mu.Lock()
	if o.closed || !o.down.Load() {
		o.mu.Unlock()
		return
	}
	o.down.Store(false)
	outageGauge.add(o.labels, -1)
	o.mu.Unlock()
	o.log.Info("redis answers again: events are queued in it",
		zap.String("redis", o.labels[1]), zap.Duration("down_for", time.Since(time.Unix(0, o.since.Load()))),
		zap.Int64("spooled_without_waiting", o.skipped.Load()))
	if wake := o.spooled(); wake != nil {
		wake()
		if o.notify != nil {
			o.notify(o.ctx, false, o.labels[1], time.Unix(0, o.since.Load()))
		}
	}
}

// close stops the probe and drops the runtime's part in the metrics.
func (o *outage) close() {
	o.mu.Lock()
	o.closed = true
	o.cancel()
	o.mu.Unlock()
	o.probes.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.Load() {
		outageGauge.add(o.labels, -1)
	}
	if o.named {
		outageGauge.release(o.labels)
	}
}

// outageGauge keeps redis_down per namespace and server: 1 while any
// runtime of that pair is in an outage. Two runtimes can share a pair (the
// same server with other TLS files, or replica_acks, during a reload); one
// must neither clear the other's outage nor drop its series.
var outageGauge = downGauge{users: map[[2]string]int{}, down: map[[2]string]int{}}

type downGauge struct {
	mu          sync.Mutex
	users, down map[[2]string]int
}

// use counts a runtime of labels, down or not.
func (g *downGauge) use(labels [2]string, down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.users[labels]++
	if down {
		g.down[labels]++
	}
	g.setLocked(labels)
}

// add counts one more (1) or one fewer (-1) outage of labels.
func (g *downGauge) add(labels [2]string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down[labels] += n
	g.setLocked(labels)
}

// release forgets a runtime of labels; the last one drops the series.
func (g *downGauge) release(labels [2]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.users[labels]--; g.users[labels] > 0 {
		return
	}
	delete(g.users, labels)
	delete(g.down, labels)
	metrics.RedisDown.DeleteLabelValues(labels[0], labels[1])
}

func (g *downGauge) setLocked(labels [2]string) {
	v := 0.0
	if g.down[labels] > 0 {
		v = 1
	}
	metrics.RedisDown.WithLabelValues(labels[0], labels[1]).Set(v)
}
