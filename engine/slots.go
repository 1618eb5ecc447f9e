package engine

import (
	"context"
	"sync"
)

// slots bounds concurrent deliveries. Unlike a buffered channel its limit can
// change while it is in use, so a reload can resize the worker pool.
type slots struct {
	mu    sync.Mutex
	used  int
	limit int
	free  chan struct{} // closed and replaced whenever a slot frees up
}

func newSlots(limit int) *slots {
	return &slots{limit: limit, free: make(chan struct{})}
}

func (s *slots) setLimit(n int) {
	s.mu.Lock()
	s.limit = n
	s.signal()
	s.mu.Unlock()
}

// available returns how many slots are free now.
func (s *slots) available() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.limit-s.used, 0)
}

// acquire takes a slot, waiting until one is free or ctx ends.
func (s *slots) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.used < s.limit {
			s.used++
			s.mu.Unlock()
			return nil
		}
		wait := s.free
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitFree returns once a slot is free or ctx ends.
func (s *slots) waitFree(ctx context.Context) {
	s.mu.Lock()
	if s.used < s.limit {
		s.mu.Unlock()
		return
	}
	wait := s.free
	s.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
	}
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.signal()
	s.mu.Unlock()
}

func (s *slots) signal() {
	close(s.free)
	s.free = make(chan struct{})
}

func (s *slots) limitNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit
}

// hookSlots counts each hook's deliveries in flight in this process.
type hookSlots struct {
	mu   sync.Mutex
	busy map[int64]int
}

// tryAcquire takes one of the hook's limit slots if one is free.
func (h *hookSlots) tryAcquire(id int64, limit int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy == nil {
		h.busy = map[int64]int{}
	}
	if h.busy[id] >= limit {
		return false
	}
	h.busy[id]++
	return true
}

func (h *hookSlots) release(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[id]--; h.busy[id] <= 0 {
		delete(h.busy, id)
	}
}
