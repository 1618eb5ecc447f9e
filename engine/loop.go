package engine

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// step is one turn of a loop: it returns how long to wait before the next.
type step func(ctx context.Context) (time.Duration, error)

// loop runs step until ctx ends, first after wait. A step that fails (Redis
// trouble) is retried after a backoff that doubles from 100ms to 5s, and
// logged with the loop's name.
func (r *Runtime) loop(ctx context.Context, name string, wait time.Duration, s step) {
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		var bo backoff
		for sleep(ctx, wait); ctx.Err() == nil; sleep(ctx, wait) {
			var err error
			if wait, err = s(ctx); err == nil {
				bo.reset()
				continue
			}
			if ctx.Err() != nil {
				return
			}
			wait = bo.next()
			r.log.Warn("redis error; retrying", zap.String("loop", name), zap.Duration("in", wait), zap.Error(err))
		}
	}()
}

// every makes a step of fn, which runs every interval.
func every(interval time.Duration, fn func(ctx context.Context)) step {
	return func(ctx context.Context) (time.Duration, error) {
		fn(ctx)
		return interval, nil
	}
}

// backoff doubles from 100ms to 5s.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(b.d*2, 100*time.Millisecond), 5*time.Second)
	return b.d
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits d, or until ctx ends; it returns at once for d ≤ 0.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitOr waits for wait to return, up to d; then it calls abort and waits
// on.
func waitOr(wait func(), d time.Duration, abort func()) {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		abort()
		<-done
	}
}
