// Package ordercheck checks, for tests of ordered hooks, that a receiver
// got events in capture order.
package ordercheck

import "testing"

// Check asserts that the first arrival of each event (numbered in capture
// order) comes after the first arrivals of every event captured before it
// that arrived, and that no event of accepted is passed over by a later
// one: a retry may repeat an event, a later event never goes before it. It
// returns how many distinct events arrived.
func Check(t testing.TB, arrived, accepted []int) int {
	t.Helper()
	wanted := map[int]bool{}
	for _, q := range accepted {
		wanted[q] = true
	}
	seen := map[int]bool{}
	last := -1 << 62
	for i, q := range arrived {
		if seen[q] {
			continue
		}
		if q < last {
			t.Fatalf("event %d arrived (request %d) after event %d: out of capture order\narrived: %v", q, i, last, arrived)
		}
		for _, k := range accepted {
			if k > last && k < q && !seen[k] {
				t.Fatalf("event %d arrived (request %d) before event %d, captured earlier\narrived: %v", q, i, k, arrived)
			}
		}
		seen[q], last = true, q
	}
	return len(seen)
}
