package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
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

// tryAcquire takes a slot if one is free now.
func (s *slots) tryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used < s.limit {
		s.used++
		return true
	}
	return false
}

// room is how many slots are free now.
func (s *slots) room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.limit-s.used, 0)
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

// hookSlots counts each hook's deliveries in flight in this process, and
// holds the deliveries that found their hook at its cap until a slot frees:
// a fast receiver at its cap is then fed at once instead of through the
// schedule.
type hookSlots struct {
	mu     sync.Mutex
	busy   map[int64]int
	parked map[int64][]parked
}

// parked is a delivery waiting for a slot of its hook, until a deadline
// (well within the lease, so no other process claims it meanwhile).
type parked struct {
	msg   redisstore.DeliveryMsg
	until time.Time
}

// acquireOrPark takes one of the hook's limit slots if one is free;
// otherwise it parks m, if fewer than maxParked are parked. It reports
// whether it took a slot and whether it parked m.
func (h *hookSlots) acquireOrPark(id int64, limit int, m *redisstore.DeliveryMsg, maxParked int, until time.Time) (acquired, wasParked bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy == nil {
		h.busy, h.parked = map[int64]int{}, map[int64][]parked{}
	}
	if h.busy[id] < limit {
		h.busy[id]++
		return true, false
	}
	if len(h.parked[id]) >= maxParked {
		return false, false
	}
	h.parked[id] = append(h.parked[id], parked{msg: *m, until: until})
	return false, true
}

// release frees one of the hook's slots and returns the delivery parked
// longest for it, if any.
func (h *hookSlots) release(id int64) (redisstore.DeliveryMsg, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[id]--; h.busy[id] <= 0 {
		delete(h.busy, id)
	}
	q := h.parked[id]
	if len(q) == 0 {
		return redisstore.DeliveryMsg{}, false
	}
	next := q[0].msg
	if len(q) == 1 {
		delete(h.parked, id)
	} else {
		h.parked[id] = q[1:]
	}
	return next, true
}

// expired removes and returns the deliveries parked past their deadline.
func (h *hookSlots) expired(now time.Time) []redisstore.DeliveryMsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []redisstore.DeliveryMsg
	for id, q := range h.parked {
		i := 0
		for i < len(q) && !q[i].until.After(now) { // oldest first
			out = append(out, q[i].msg)
			i++
		}
		switch {
		case i == len(q):
			delete(h.parked, id)
		case i > 0:
			h.parked[id] = q[i:]
		}
	}
	return out
}
