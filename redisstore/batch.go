package redisstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces the commands of concurrent callers into pipelines: while
// one pipeline is in flight, the next callers queue, and they all go in the
// next one. Under load many calls share a round trip (and its two syscalls
// on each side); alone, a call goes at once. This is what keeps the capture
// XADD and a delivery's admit/settle scripts from costing a round trip each.
type batcher struct {
	rdb redis.UniversalClient
	ops chan *batchOp
	// max bounds the calls per pipeline.
	max int
	// tail, when set, is queued after every pipeline's calls, on the same
	// connection (WAIT for replica acknowledgements).
	tail func(ctx context.Context, p redis.Pipeliner) redis.Cmder
	// timeout bounds one pipeline's I/O.
	timeout time.Duration

	stop    chan struct{}
	stopped chan struct{} // closed once no flusher runs
	wg      sync.WaitGroup
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
	done  chan struct{}
}

// batchFlushers is how many pipelines may be in flight at once: one
// collects while another waits for Redis.
const batchFlushers = 2

func newBatcher(rdb redis.UniversalClient, max int, timeout time.Duration) *batcher {
	b := &batcher{rdb: rdb, ops: make(chan *batchOp, 4*max), max: max, timeout: timeout,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(batchFlushers)
	for range batchFlushers {
		go b.loop()
	}
	return b
}

// errBatcherClosed is returned to calls made after close.
var errBatcherClosed = errors.New("redis store is closed")

// do queues an op and waits until its pipeline returned. The op's commands
// carry their own results and errors. If ctx ends first, do returns its
// error; the commands may still run.
func (b *batcher) do(ctx context.Context, queue func(p redis.Pipeliner, eval bool)) (*batchOp, error) {
	op := &batchOp{ctx: ctx, queue: queue, done: make(chan struct{})}
	select {
	case b.ops <- op:
	case <-b.stop:
		return nil, errBatcherClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-op.done:
		if len(op.cmds) == 0 && ctx.Err() != nil {
			return nil, ctx.Err() // given up before its pipeline: not sent
		}
		return op, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		select {
		case <-op.done:
			return op, nil
		default:
			return nil, errBatcherClosed // queued after the flushers left
		}
	}
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*batchOp, 0, b.max)
	for {
		select {
		case <-b.stop:
			return
		case op := <-b.ops:
			batch = append(batch[:0], op)
		}
	more:
		for len(batch) < b.max {
			select {
			case op := <-b.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		b.flush(batch)
		for _, op := range batch {
			close(op.done)
		}
		clear(batch)
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

// close aborts the pipelines in flight and stops the flushers; calls still
// queued get errBatcherClosed.
func (b *batcher) close() {
	b.shut()
	b.wait()
}

// shut ends the pipelines in flight and refuses new calls.
func (b *batcher) shut() {
	b.cancel()
	close(b.stop)
}

// wait returns once the flushers have left.
func (b *batcher) wait() {
	b.wg.Wait()
	close(b.stopped)
}
