package main

import (
	"context"
	"math"
	"net/http"
	"time"
)

// proxy runs scenarios 1, 2 and 2b: the same Caddy serves the same
// upstream on two sites, one with webhooks_capture; rounds alternate
// A/B/B/A… and the medians are compared. In 1 and 2 no hooks are
// configured: an event no hook takes costs the capture (and, before the
// capture fanned out itself, its XADD and the fan-out's read and
// acknowledgement). In 2b one hook takes every event, in silent mode: each
// capture queues its delivery, which is held, not sent.
func (b *bench) proxy() error {
	client := newClient(b.o.conns)
	for _, sc := range []struct {
		id, name, path, target string
		min                    float64
		hooks                  []hookConf
		extra                  []string
	}{
		{"1", "proxy overhead, non-event responses", "/plain", "≥ 0.97", 0.97, nil, nil},
		{"2", "capture, every response a 1 KB event", "/event", "≥ 0.80", 0.80, nil, nil},
		{"2b", "capture, every response a 1 KB event for one hook (queued, held by silent_mode)", "/event", "≥ 0.80", 0.80,
			fastHooks(1), []string{"silent_mode"}},
	} {
		if b.caddy == nil || sc.hooks != nil {
			if sc.hooks != nil {
				if err := b.rds.reset(context.Background()); err != nil {
					return err
				}
			}
			if err := b.startCaddy("proxy-"+sc.id, sc.hooks, sc.extra...); err != nil {
				return err
			}
		}
		method := http.MethodGet
		if sc.path == "/event" {
			method = http.MethodPost
		}
		warm := min(b.o.dur, time.Second)
		closedLoop(client, method, b.baseURL(sc.path), b.o.conns, warm)
		closedLoop(client, method, b.candURL(sc.path), b.o.conns, warm)
		var rps, p99 [2][]float64 // [0] baseline, [1] candidate
		for r := 0; r < b.o.rounds; r++ {
			for k := 0; k < 2; k++ {
				side := (r + k) % 2 // alternate which goes first
				// Let the fan-out catch up, so a round does not pay for the last.
				waitFor(15*time.Second, func() bool { return b.queuedEvents() == 0 })
				url := b.baseURL(sc.path)
				if side == 1 {
					url = b.candURL(sc.path)
				}
				res := closedLoop(client, method, url, b.o.conns, b.o.dur)
				b.errs += res.errs
				rps[side] = append(rps[side], res.rps())
				p99[side] = append(p99[side], ms(pct(res.lat, 99)))
				logf("scenario %s round %d %s: %.0f req/s p50 %.2f ms p99 %.2f ms errors %d",
					sc.id, r+1, []string{"baseline", "candidate"}[side], res.rps(), ms(pct(res.lat, 50)), ms(pct(res.lat, 99)), res.errs)
			}
		}
		b.add(sc.id, sc.name+": requests/s", median(rps[0]), median(rps[1]), sc.target, ratioAtLeast(sc.min))
		b.add(sc.id, sc.name+": p99 latency ms", median(p99[0]), median(p99[1]), "", nil)
		if (sc.id == "2" || sc.id == "2b") && b.o.pprofDir != "" {
			waitFor(15*time.Second, func() bool { return b.queuedEvents() == 0 })
			secs := int(math.Max(b.o.dur.Seconds(), 5))
			done := b.profile("scenario"+sc.id+"-capture", secs)
			closedLoop(client, method, b.candURL(sc.path), b.o.conns, time.Duration(secs)*time.Second)
			<-done
		}
	}
	b.stopCaddy()
	return nil
}
