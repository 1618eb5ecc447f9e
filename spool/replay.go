package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Replay settings.
const (
	enqueueTimeout = 5 * time.Second
	commitEvery    = 100 // records between saved replay positions
	minRetry       = time.Second
	maxRetry       = 10 * time.Second
)

// Start opens the spool and starts the replayer, which queues spooled
// events through enqueue, in order, whenever there are some and Redis
// takes them. Later calls only replace enqueue (after a config reload the
// newest runtime queues them).
func (s *Spool) Start(enqueue Enqueue) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.enqueue.Store(&enqueue) // a reload's newer runtime takes over
	if s.started {
		return nil
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.run(ctx)
	return nil
}

// Close stops the replayer (what it has not queued stays in the file) and
// closes the file.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

func (s *Spool) run(ctx context.Context) {
	defer close(s.done)
	wait := minRetry
	for {
		if s.Pending() > 0 {
			select { // this replay covers what a wake-up asked for
			case <-s.wake:
			default:
			}
			err := s.replay(ctx, *s.enqueue.Load())
			s.failing.Store(err != nil)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("spool: redis does not take spooled events yet; retrying",
					zap.Int("events", s.Pending()), zap.Duration("in", wait), zap.Error(err))
				wait = min(2*wait, maxRetry)
			} else {
				wait = minRetry
				continue // more may have come meanwhile
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// replay queues the records from the replay position to the end of what
// was written when it began, in order, stopping at the first failure.
func (s *Spool) replay(ctx context.Context, enqueue Enqueue) error {
	s.mu.Lock()
	f, off, end := s.f, s.head, s.size
	s.mu.Unlock()
	start, n := time.Now(), 0
	done := 0 // records queued since the last saved position
	for off < end {
		ev, size, err := readRecord(f, off, end)
		if err != nil {
			// Checked when opened and written: the disk changed under us.
			s.log.Error("spool: unreadable record; dropping the rest of the spool",
				zap.Int64("offset", off), zap.Int64("bytes", end-off), zap.Error(err))
			spoolRejected.WithLabelValues(s.name, "error").Add(float64(s.Pending() - done))
			return s.commit(end, s.Pending())
		}
		ectx, cancel := context.WithTimeout(ctx, enqueueTimeout)
		err = enqueue(ectx, ev)
		cancel()
		if err != nil {
			if cerr := s.commit(off, done); cerr != nil {
				s.log.Error("spool: saving the replay position failed", zap.Error(cerr))
			}
			return err
		}
		off += size
		done++
		n++
		replayed.WithLabelValues(s.name).Inc()
		if done == commitEvery {
			if err := s.commit(off, done); err != nil {
				return err
			}
			done = 0
		}
	}
	if err := s.commit(off, done); err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("spool: queued spooled events in redis", zap.Int("events", n), zap.Duration("took", time.Since(start)))
	}
	return nil
}

// commit saves off as the replay position after n more records were
// queued; once everything is queued it empties the file.
func (s *Spool) commit(off int64, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 && off == s.head && off != s.size {
		return nil
	}
	s.head = off
	s.pending -= n
	defer s.gauges()
	if s.head == s.size {
		// Empty the file first: a crash before the position file is
		// removed leaves a position past the end, which Open resets.
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("emptying spool: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("syncing spool: %w", err)
		}
		s.head, s.size = 0, 0
		if err := os.Remove(filepath.Join(s.dir, headFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing spool position: %w", err)
		}
		return nil
	}
	if err := writeHead(s.dir, s.head); err != nil {
		return fmt.Errorf("saving spool position: %w", err)
	}
	return nil
}
