package ordered

import (
	"sync"
	"time"
)

// Captures tracks the events this process has taken that are not in
// Redis yet, so its capture mark can say that nothing captured before the
// mark is still on its way. An event counts from the start of its capture
// until Redis has it; one Redis refused counts a while longer (linger),
// until its caller has spooled it (the spool's own mark takes over).
type Captures struct {
	mu     sync.Mutex
	next   uint64
	open   map[uint64]time.Time
	linger []lingering
}

// lingering is a refused event, counted until its time is up.
type lingering struct{ at, until time.Time }

// linger is how long an event Redis refused still counts: its caller
// spools it at once, within an fsync.
const linger = 10 * time.Second

// Begin counts an event captured at at; End ends it.
func (c *Captures) Begin(at time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[uint64]time.Time{}
	}
	c.next++
	c.open[c.next] = at
	return c.next
}

// End stops counting event id: Redis has it, or refused it (then it
// lingers).
func (c *Captures) End(id uint64, refused bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.open[id]; ok && refused {
		if len(c.linger) >= lingerPrune { // Oldest prunes them too, ten times a second
			c.prune(now)
		}
		c.linger = append(c.linger, lingering{at: at, until: now.Add(linger)})
	}
	delete(c.open, id)
}

// lingerPrune is how many refused events End keeps before it drops those
// whose time is up.
const lingerPrune = 4096

// prune drops the refused events whose time is up; c.mu is held.
func (c *Captures) prune(now time.Time) {
	keep := c.linger[:0]
	for _, l := range c.linger {
		if l.until.After(now) {
			keep = append(keep, l)
		}
	}
	c.linger = keep
}

// Oldest returns the earliest capture time still counted at now.
func (c *Captures) Oldest(now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(now)
	var oldest time.Time
	for _, l := range c.linger {
		if oldest.IsZero() || l.at.Before(oldest) {
			oldest = l.at
		}
	}
	for _, at := range c.open {
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest, !oldest.IsZero()
}
