package main

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"time"
)

// latency is scenario 4: events at a steady 1,000/s through the capture
// path, one hook. Latency is measured at the receiver from the "ts" the app
// wrote into the payload (just before answering) to the delivery's arrival:
// it covers the proxy's response path, the enqueue, the fan-out, the
// delivery read and the POST, so it bounds enqueue → first attempt from
// above. The baseline is the app POSTing the same payload straight to the
// receiver at the same rate, measured the same way.
func (b *bench) latency() error {
	rate, dur := 1000, 10*time.Second
	if b.o.smoke {
		rate, dur = 200, time.Second
	}
	variants := []struct {
		id, name string
		extra    []string
	}{
		{"4", "hook_concurrency = workers", []string{fmt.Sprintf("hook_concurrency %d", b.o.workers)}},
		{"4b", "default hook_concurrency 8", nil},
	}
	for _, v := range variants {
		if b.o.smoke && v.id != "4" {
			continue
		}
		if err := b.latencyVariant(v.id, v.name, v.extra, rate, dur); err != nil {
			return err
		}
	}
	return nil
}

// drained waits until Caddy has nothing queued: no event to fan out, no
// delivery ready or scheduled.
func (b *bench) drained(d time.Duration) bool {
	return waitFor(d, func() bool {
		return b.scheduledDeliveries() == 0 && b.readyDeliveries() == 0 && b.queuedEvents() == 0
	})
}

func (b *bench) latencyVariant(id, variant string, extra []string, rate int, dur time.Duration) error {
	if err := b.startCaddy("latency-"+id, fastHooks(1), extra...); err != nil {
		return err
	}
	defer b.stopCaddy()
	client := newClient(64)
	// Warm up connections and the delivery path.
	openLoop(client, http.MethodPost, b.candURL("/event"), nil, rate, dur/5)
	b.drained(time.Minute)

	measure := func(url string, body func() []byte) (p50, p99, max float64, n int) {
		b.rcv.reset()
		b.rcv.record.Store(true)
		defer b.rcv.record.Store(false)
		res := openLoop(client, http.MethodPost, url, body, rate, dur)
		b.errs += res.errs
		if !waitFor(30*time.Second, func() bool { return b.rcv.count.Load() >= res.n }) {
			b.note("scenario %s: %d of %d deliveries arrived within 30s of the end", id, b.rcv.count.Load(), res.n)
			b.errs += res.n - b.rcv.count.Load()
		}
		// The next round must not receive this one's stragglers.
		if !b.drained(time.Minute) {
			b.note("scenario %s: the queues did not drain within a minute", id)
		}
		lat := b.rcv.latencies()
		slices.Sort(lat)
		if len(lat) == 0 {
			return math.NaN(), math.NaN(), math.NaN(), 0
		}
		return ms(pct(lat, 50)), ms(pct(lat, 99)), ms(lat[len(lat)-1]), len(lat)
	}
	direct := func() []byte { return eventBody(time.Now().UnixNano(), "refs/heads/main") }
	var base, cand [3][]float64
	for r := 0; r < b.o.rounds; r++ {
		for k := 0; k < 2; k++ {
			var p50, p99, mx float64
			var n int
			if (r+k)%2 == 0 {
				p50, p99, mx, n = measure("http://"+b.rcvAddr+"/h/1", direct)
				base[0], base[1], base[2] = append(base[0], p50), append(base[1], p99), append(base[2], mx)
			} else {
				p50, p99, mx, n = measure(b.candURL("/event"), nil)
				cand[0], cand[1], cand[2] = append(cand[0], p50), append(cand[1], p99), append(cand[2], mx)
			}
			logf("scenario %s round %d %s: p50 %.2f ms p99 %.2f ms max %.2f ms (%d samples)",
				id, r+1, []string{"direct POST", "through caddy"}[(r+k)%2], p50, p99, mx, n)
		}
	}
	name := "latency at %d events/s, 1 hook, %s, app response → first attempt: %s ms"
	b.add(id, sprintf(name, rate, variant, "p50"), median(base[0]), median(cand[0]), "", nil)
	b.add(id, sprintf(name, rate, variant, "p99"), median(base[1]), median(cand[1]), "p99 ≤ 20 ms", func(r row) bool { return r.cand <= 20 })
	b.add(id, sprintf(name, rate, variant, "max"), median(base[2]), median(cand[2]), "", nil)
	return nil
}
