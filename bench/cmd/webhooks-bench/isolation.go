package main

import (
	"fmt"
	"time"
)

// isolation is scenario 5: ten healthy hooks take every event; an eleventh
// hook, whose receiver hangs until the delivery timeout, takes the 10 % of
// events pushed to a slow-* branch (its branch filter). Compared: the
// healthy hooks' deliveries/s with and without that hook. The hook is kept
// from being auto-disabled (disable_after_failures very high) and not
// retried, so it stays a hanging receiver for the whole run — harsher
// than GitLab's rules, which would disable it after 4 failures.
func (b *bench) isolation() error {
	events := 2000
	if b.o.smoke {
		events = 100
	}
	healthy := fastHooks(10)
	slow := append(append([]hookConf(nil), healthy...), hookConf{id: 99, path: "/slow/99", filter: "wildcard slow-*"})
	extra := []string{"timeout 2s", "max_attempts 1", "disable_after_failures 1000000"}
	ref := func(i int) string {
		if i%10 == 9 {
			return "refs/heads/slow-1"
		}
		return "refs/heads/main"
	}
	expect := int64(events * len(healthy))
	var base, cand []float64
	var hung int64
	for r := 0; r < b.o.rounds; r++ {
		for k := 0; k < 2; k++ {
			withSlow := (r+k)%2 == 1
			hooks := healthy
			if withSlow {
				hooks = slow
			}
			run, err := b.runDeliveries(fmt.Sprintf("isolation-%v", withSlow), hooks, extra, events, ref, expect, 3*time.Minute, "")
			if err != nil {
				return err
			}
			if withSlow {
				cand = append(cand, run.rate)
				hung = max(hung, b.rcv.slow.Load())
			} else {
				base = append(base, run.rate)
			}
			logf("scenario 5 round %d, hanging hook %v: %.0f healthy deliveries/s", r+1, withSlow, run.rate)
		}
	}
	b.add("5", "isolation: healthy deliveries/s with a hanging hook on 10 % of events", median(base), median(cand), "≥ 0.9", ratioAtLeast(0.9))
	if hung == 0 {
		b.errs++
		b.note("scenario 5: the hanging receiver was never called")
	} else {
		b.note("scenario 5: the hanging receiver got up to %d requests per run (timeout 2s)", hung)
	}
	return nil
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
