package redisstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces the commands of concurrent callers into pipelines: while
// a pipeline is in flight, the next callers queue, and they all go in the
// next one. Under load many calls share a round trip (and its two syscalls
// on each side); alone, a call goes at once, on the caller's own
// goroutine: a caller that finds fewer than batchFlushers pipelines in
// flight sends the queue itself, so a call at a trickle costs no hand-off
// to another goroutine and back. This is what keeps the capture XADD and
// a delivery's admit/settle scripts from costing a round trip each.
type batcher struct {
	rdb redis.UniversalClient
	// max bounds the calls per pipeline.
	max int
	// tail, when set, is queued after every pipeline's calls, on the same
	// connection (WAIT for replica acknowledgements).
	tail func(ctx context.Context, p redis.Pipeliner) redis.Cmder
	// timeout bounds one pipeline's I/O.
	timeout time.Duration

	mu       sync.Mutex
	queue    []*batchOp // calls waiting for a pipeline
	flushing int        // senders at work, at most batchFlushers
	closed   bool
	senders  sync.WaitGroup
	// ctx ends on close, so a pipeline stuck on an unreachable Redis does
	// not hold up shutdown (and a config reload with it).
	ctx    context.Context
	cancel context.CancelFunc
}

// batchOp is one caller's commands. queue adds them to p; it may be called
// again, with eval set, when a script was missing from Redis's cache (a
// restarted or failed-over server): then scripts must be sent in full.
type batchOp struct {
	ctx   context.Context // the caller's: once it ends, the op is not sent
	queue func(p redis.Pipeliner, eval bool)
	cmds  []redis.Cmder // what queue added last
	tail  redis.Cmder   // the batcher's tail command of this op's pipeline
	err   error         // errBatcherClosed: the batcher closed before it was sent
	done  chan struct{}
}

// batchFlushers is how many pipelines may be in flight at once: one
// collects while another waits for Redis.
const batchFlushers = 2

func newBatcher(rdb redis.UniversalClient, max int, timeout time.Duration) *batcher {
	b := &batcher{rdb: rdb, max: max, timeout: timeout}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// errBatcherClosed is returned to calls made after close.
var errBatcherClosed = errors.New("redis store is closed")

// do queues an op and waits until its pipeline returned: as the sender
// itself when fewer than batchFlushers pipelines are in flight. The op's
// commands carry their own results and errors. If ctx ends first, do
// returns its error; the commands may still run.
func (b *batcher) do(ctx context.Context, queue func(p redis.Pipeliner, eval bool)) (*batchOp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // given up already: not sent
	}
	op := &batchOp{ctx: ctx, queue: queue, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errBatcherClosed
	}
	b.queue = append(b.queue, op)
	send := b.flushing < batchFlushers
	if send {
		b.flushing++
		b.senders.Add(1)
	}
	b.mu.Unlock()
	if send {
		b.send(op)
	}
	select {
	case <-op.done:
		switch {
		case op.err != nil:
			return nil, op.err
		case len(op.cmds) == 0 && ctx.Err() != nil:
			return nil, ctx.Err() // given up before its pipeline: not sent
		}
		return op, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// send flushes the queue, a pipeline of at most max calls at a time, until
// own (the sender's call) is done; calls queued by then are left to a new
// sender goroutine, so that no caller waits long for others' calls.
func (b *batcher) send(own *batchOp) {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 || b.closed {
			b.flushing--
			b.mu.Unlock()
			b.senders.Done()
			return
		}
		if own != nil && isDone(own) {
			// Ours went: a goroutine of its own sends the rest.
			b.mu.Unlock()
			go b.send(nil)
			return
		}
		n := min(len(b.queue), b.max)
		batch := make([]*batchOp, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		b.flush(batch)
		for _, op := range batch {
			close(op.done)
		}
	}
}

// flush runs one pipeline (runPipeline: the calls that met a script
// Redis had lost go again in full). Errors are left on the commands.
func (b *batcher) flush(batch []*batchOp) {
	// The pipeline gives up when its last caller does, as a caller's own
	// command would: a capture that timed out spools its event, which must
	// then not reach Redis from here as well.
	deadline := time.Now().Add(b.timeout)
	if last, ok := latestDeadline(batch); ok && last.Before(deadline) {
		deadline = last
	}
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	defer cancel()
	run := runPipeline(ctx, b.rdb, len(batch), func(p redis.Pipeliner, eval bool, i int) {
		// A caller that gave up (and may have spooled its event) must
		// not have its command run after all.
		if op := batch[i]; op.ctx.Err() == nil {
			op.queue(p, eval)
		}
	}, b.tail)
	for i, op := range batch {
		op.cmds, op.tail = run.cmds[i], run.tail[i]
	}
}

// latestDeadline is the latest of the ops' deadlines, if they all have one.
func latestDeadline(batch []*batchOp) (time.Time, bool) {
	var last time.Time
	for _, op := range batch {
		d, ok := op.ctx.Deadline()
		if !ok {
			return time.Time{}, false
		}
		if d.After(last) {
			last = d
		}
	}
	return last, true
}

func isDone(op *batchOp) bool {
	select {
	case <-op.done:
		return true
	default:
		return false
	}
}

// close aborts the pipelines in flight and stops the senders; calls still
// queued get errBatcherClosed.
func (b *batcher) close() {
	b.shut()
	b.wait()
}

// shut ends the pipelines in flight and refuses new calls; the calls still
// queued get errBatcherClosed.
func (b *batcher) shut() {
	b.cancel()
	b.mu.Lock()
	b.closed = true
	queued := b.queue
	b.queue = nil
	b.mu.Unlock()
	for _, op := range queued {
		op.err = errBatcherClosed
		close(op.done)
	}
}

// wait returns once the senders have left.
func (b *batcher) wait() { b.senders.Wait() }
