// Package spool keeps captured events on local disk while Redis cannot take
// them, and queues them in Redis, in the order they were captured, once it
// answers again. It is the fallback of the capture path (see the webhooks
// app's spool_dir): an event is in the spool file, fsynced, before the
// client's response completes, just as it would be in Redis.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// File names inside the spool directory.
const (
	dataFile = "events.spool" // the records
	headFile = "events.head"  // offset of the first record not yet replayed
)

// ErrFull is returned by Append when the event would make the spool larger
// than its limit.
var ErrFull = errors.New("spool is full")

// Enqueue queues an event in Redis (engine.Runtime.Enqueue).
type Enqueue func(context.Context, *webhook.Event) error

// Spool is one directory's append-only file of events. It is safe for
// concurrent use.
type Spool struct {
	dir     string
	name    string // metrics label: the Redis namespace
	maxSize int64
	log     *zap.Logger

	mu      sync.Mutex
	f       *os.File // nil until first used
	size    int64    // bytes of valid records in the file
	head    int64    // offset of the first record not yet replayed
	pending int      // records from head to size
	// oldest is the earliest capture time of the records appended since
	// the spool was last empty: no record still waiting is older.
	oldest  time.Time
	closed  bool
	started bool
	enqueue atomic.Pointer[Enqueue]
	wake    chan struct{}
	failing atomic.Bool // the last replay stopped at a Redis error
	cancel  context.CancelFunc
	done    chan struct{}
}

// New describes a spool in dir holding at most maxSize bytes. It touches
// nothing on disk: the file is opened on first use.
func New(dir, name string, maxSize int64, log *zap.Logger) *Spool {
	if log == nil {
		log = zap.NewNop()
	}
	return &Spool{dir: dir, name: name, maxSize: maxSize, log: log, wake: make(chan struct{}, 1)}
}

// SetMaxSize changes the limit for later appends.
func (s *Spool) SetMaxSize(n int64) {
	s.mu.Lock()
	s.maxSize = n
	s.mu.Unlock()
}

// openLocked opens the file once: it reads the replay position, checks the
// records after it and cuts off a torn or corrupt tail.
func (s *Spool) openLocked() error {
	if s.closed {
		return errors.New("spool is closed")
	}
	if s.f != nil {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("creating spool directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, dataFile), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening spool: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening spool: %w", err)
	}
	end := st.Size()
	head := readHead(s.dir)
	if head > end {
		head = 0 // the file was emptied after the position was written
	}
	off, n := head, 0
	var oldest time.Time
	for {
		ev, size, err := readRecord(f, off, end)
		if err != nil {
			if !errors.Is(err, errTorn) && !errors.Is(err, io.EOF) {
				f.Close()
				return err
			}
			break
		}
		if oldest.IsZero() || ev.At.Before(oldest) {
			oldest = ev.At
		}
		off += size
		n++
	}
	if off < end {
		s.log.Warn("spool: cutting off a torn or corrupt tail (a crash while writing)",
			zap.String("file", f.Name()), zap.Int64("offset", off), zap.Int64("bytes", end-off))
		if err := f.Truncate(off); err != nil {
			f.Close()
			return fmt.Errorf("truncating spool tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("syncing spool: %w", err)
		}
	}
	s.f, s.size, s.head, s.pending, s.oldest = f, off, head, n, oldest
	s.gauges()
	if n > 0 {
		s.log.Info("spool holds events from before; they are queued once redis answers",
			zap.String("dir", s.dir), zap.Int("events", n))
	}
	return nil
}

// Append writes ev to the spool and fsyncs it. It returns ErrFull when the
// spool has no room for it.
func (s *Spool) Append(ev *webhook.Event) error {
	rec, err := encode(ev)
	if err != nil {
		spoolRejected.WithLabelValues(s.name, "error").Inc()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.openLocked(); err != nil {
		spoolRejected.WithLabelValues(s.name, "error").Inc()
		return err
	}
	if s.size+int64(len(rec)) > s.maxSize {
		spoolRejected.WithLabelValues(s.name, "full").Inc()
		return fmt.Errorf("%w (%d of %d bytes used)", ErrFull, s.size, s.maxSize)
	}
	if _, err := s.f.Write(rec); err != nil {
		s.undoLocked()
		spoolRejected.WithLabelValues(s.name, "error").Inc()
		return fmt.Errorf("writing spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.undoLocked()
		spoolRejected.WithLabelValues(s.name, "error").Inc()
		return fmt.Errorf("syncing spool: %w", err)
	}
	s.size += int64(len(rec))
	if s.pending == 0 || ev.At.Before(s.oldest) {
		s.oldest = ev.At
	}
	s.pending++
	spooled.WithLabelValues(s.name).Inc()
	s.gauges()
	if !s.failing.Load() { // else the replayer waits for Wake or its backoff
		s.Wake()
	}
	return nil
}

// Wake has the replayer try Redis now rather than after its retry backoff:
// Redis answers again. Append wakes it too, unless its last try failed: a
// burst of events while Redis is down must not make it try (and log) once
// per event.
func (s *Spool) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// undoLocked drops a partly written record.
func (s *Spool) undoLocked() {
	if err := s.f.Truncate(s.size); err != nil {
		s.log.Error("spool: dropping a partly written record failed; it is cut off at the next start", zap.Error(err))
	}
}

// Oldest returns the earliest capture time of the events waiting for
// Redis (at most that early: it is kept until the spool is empty), and
// whether any waits.
func (s *Spool) Oldest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil && !s.closed {
		// Before the replayer starts, what a previous run left counts too.
		if err := s.openLocked(); err != nil {
			s.log.Warn("spool: reading what waits in it failed", zap.Error(err))
		}
	}
	return s.oldest, s.pending > 0
}

// Pending is the number of events waiting for Redis.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

func (s *Spool) gauges() {
	spoolEvents.WithLabelValues(s.name).Set(float64(s.pending))
	spoolBytes.WithLabelValues(s.name).Set(float64(s.size))
}

// readHead returns the saved replay position, 0 if there is none or it is
// unreadable (then some events are queued twice: with the same event ID,
// so the same Idempotency-Key).
func readHead(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, headFile))
	if err != nil || len(b) != 12 || crc32.Checksum(b[:8], castagnoli) != binary.BigEndian.Uint32(b[8:]) {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// writeHead saves the replay position (write, fsync, rename).
func writeHead(dir string, off int64) error {
	b := binary.BigEndian.AppendUint64(nil, uint64(off))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	tmp := filepath.Join(dir, headFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, headFile))
}
