package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"
)

// steadyRun is one open-loop run of events through the capture path at a
// fixed rate, one hook, measured from after a warm-up until every delivery
// of the run has settled.
type steadyRun struct {
	events, delivered  int64
	caddyCPU, redisCPU float64 // seconds, /proc/<pid>/stat, over the run and its drain
	trips              int64   // round trips counted by the proxy (0 without one)
	stats              redisStats
	mem0, mem1         int64   // INFO used_memory before the run and after its drain
	idleCPU            float64 // Caddy + Redis CPU seconds per second with no events
	// plainCPU is Caddy's CPU seconds per request for the same load through
	// the site without webhooks_capture (scenario 8 only): the proxying
	// that the per-delivery figure includes.
	plainCPU float64
}

// steady runs rate events/s for dur. With proxy, Caddy talks to Redis
// through it, so its round trips are counted.
func (b *bench) steady(name string, rate int, dur time.Duration, proxy *rtProxy) (steadyRun, error) {
	ctx := context.Background()
	b.stopCaddy()
	if err := b.rds.reset(ctx); err != nil {
		return steadyRun{}, err
	}
	redis := b.conf.redisURL
	if proxy != nil {
		redis = "redis://" + proxy.addr() + "/0"
	}
	if err := b.startCaddyOn(name, redis, fastHooks(1)); err != nil {
		return steadyRun{}, err
	}
	defer b.stopCaddy()
	client := newClient(64)
	url := b.candURL("/event")
	// The warm-up also fills the hook's log to its 500 entries, so the
	// memory measured after the run is not the log growing.
	warm := openLoop(client, http.MethodPost, url, nil, rate, min(2*time.Second, dur))
	b.errs += warm.errs
	if !b.drained(time.Minute) {
		return steadyRun{}, fmt.Errorf("%s: the warm-up did not drain within a minute", name)
	}
	b.rcv.reset()
	var run steadyRun
	// What the engine's polling costs with nothing to do: a fixed cost
	// that a per-delivery figure at a low rate includes.
	i0, _ := cpuSeconds(b.caddy.pid())
	j0, _ := cpuSeconds(b.rds.cmd.Process.Pid)
	idle := 3 * time.Second
	if b.o.smoke {
		idle = time.Second
	}
	time.Sleep(idle)
	i1, _ := cpuSeconds(b.caddy.pid())
	j1, _ := cpuSeconds(b.rds.cmd.Process.Pid)
	run.idleCPU = (i1 - i0 + j1 - j0) / idle.Seconds()
	var err error
	if run.mem0, err = b.rds.infoInt(ctx, "memory", "used_memory"); err != nil {
		return run, err
	}
	s0, err := b.rds.stats(ctx)
	if err != nil {
		return run, err
	}
	c0, _ := cpuSeconds(b.caddy.pid())
	r0, _ := cpuSeconds(b.rds.cmd.Process.Pid)
	var t0 int64
	if proxy != nil {
		t0 = proxy.trips.Load()
	}

	var prof <-chan struct{}
	if proxy != nil { // scenario 8, not 11's long run
		prof = b.profile(fmt.Sprintf("scenario8-%d-per-s", rate), int(max(dur.Seconds(), 1)))
	}
	res := openLoop(client, http.MethodPost, url, nil, rate, dur)
	b.errs += res.errs
	if prof != nil {
		<-prof
	}
	run.events = res.n
	if !waitFor(time.Minute, func() bool { return b.rcv.count.Load() >= res.n }) {
		b.note("%s: %d of %d deliveries arrived within a minute of the end", name, b.rcv.count.Load(), res.n)
		b.errs += res.n - b.rcv.count.Load()
	}
	b.drained(time.Minute)

	c1, _ := cpuSeconds(b.caddy.pid())
	r1, _ := cpuSeconds(b.rds.cmd.Process.Pid)
	if proxy != nil {
		run.trips = proxy.trips.Load() - t0
	}
	s1, err := b.rds.stats(ctx)
	if err != nil {
		return run, err
	}
	if run.mem1, err = b.rds.infoInt(ctx, "memory", "used_memory"); err != nil {
		return run, err
	}
	run.delivered = b.rcv.count.Load()
	run.caddyCPU, run.redisCPU, run.stats = c1-c0, r1-r0, s1.delta(s0)
	if proxy != nil {
		// The same requests through the site without capture: nothing is
		// captured, so this is the proxying alone.
		p0, _ := cpuSeconds(b.caddy.pid())
		plain := openLoop(client, http.MethodPost, b.baseURL("/event"), nil, rate, min(dur, 10*time.Second))
		p1, _ := cpuSeconds(b.caddy.pid())
		b.errs += plain.errs
		run.plainCPU = (p1 - p0) / float64(max(plain.n, 1))
	}
	return run, nil
}

// steadyCPU is scenario 8: CPU per delivery of Caddy and Redis (capture
// included) and Redis round trips per event at a steady 500 events/s, and
// 1,000/s in the full suite.
func (b *bench) steadyCPU() error {
	rates, dur := []int{500, 1000}, b.o.steadyDur
	if b.o.smoke {
		rates, dur = []int{100}, time.Second
	}
	proxy, err := startRTProxy(b.rds.addr())
	if err != nil {
		return err
	}
	defer proxy.close()
	for i, rate := range rates {
		id := "8"
		if i > 0 {
			id = "8b"
		}
		if !b.want["8"] && !b.want[[]string{"8a", "8b"}[i]] { // -only 8a or 8b: one rate
			continue
		}
		var caddy, plain, redis, sum, trips, cmds, reads, idle []float64
		var last steadyRun
		for r := 0; r < b.o.rounds; r++ {
			run, err := b.steady("steady-"+id, rate, dur, proxy)
			if err != nil {
				return err
			}
			n := float64(max(run.delivered, 1))
			caddy = append(caddy, run.caddyCPU*1e6/n)
			plain = append(plain, run.plainCPU*1e6)
			redis = append(redis, run.redisCPU*1e6/n)
			sum = append(sum, (run.caddyCPU+run.redisCPU)*1e6/n)
			ev := float64(max(run.events, 1))
			trips = append(trips, float64(run.trips)/ev)
			cmds = append(cmds, float64(run.stats.total())/ev)
			reads = append(reads, float64(run.stats.reads)/ev)
			idle = append(idle, run.idleCPU*1e3)
			last = run
			logf("scenario %s round %d: %d events, %d delivered, CPU µs per delivery: Caddy %.1f Redis %.1f sum %.1f; %.2f round trips, %.2f commands per event; load %s",
				id, r+1, run.events, run.delivered, caddy[r], redis[r], sum[r], trips[r], cmds[r], loadAvg())
		}
		name := fmt.Sprintf("steady %d events/s, 1 hook, 1 KB, %s runs: ", rate, dur)
		b.add(id, name+"Caddy CPU µs per delivery (capture included; baseline: per request through the site without capture)",
			median(plain), median(caddy), "", nil)
		b.add(id, name+"Redis CPU µs per delivery", math.NaN(), median(redis), "", nil)
		b.add(id, name+"Caddy + Redis CPU µs per delivery", math.NaN(), median(sum), "≤ 500 µs (v2 layout)", func(r row) bool { return r.cand <= 500 })
		b.add(id, name+"Redis round trips per event (counted by a proxy)", math.NaN(), median(trips), "reported", nil)
		b.add(id, name+"Redis commands per event (in-script commands included)", math.NaN(), median(cmds), "", nil)
		b.add(id, name+"Redis socket reads per event (total_reads_processed)", math.NaN(), median(reads), "", nil)
		b.addZeroOK(id, "idle Caddy + Redis CPU, ms per second (no events, same config)", math.NaN(), median(idle), "", nil)
		b.note("scenario %s, %d events/s, commands per event (last round): %s", id, rate, breakdown(last.stats, max(last.events, 1)))
	}
	return nil
}

// steadyMemory is scenario 11: what a steady run leaves in Redis once
// every delivery is done — mostly the recursion-chain keys, kept 30
// minutes. The run is one round of -mem-dur.
func (b *bench) steadyMemory() error {
	rate, dur := 500, b.o.memDur
	if b.o.smoke {
		rate, dur = 100, 2*time.Second
	}
	run, err := b.steady("steady-memory", rate, dur, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	ck, err := b.chainKeys(ctx, 1000)
	if err != nil {
		return err
	}
	ev := float64(max(run.events, 1))
	name := fmt.Sprintf("steady %d events/s for %s, deliveries done: ", rate, dur)
	b.add("11", name+"Redis used_memory growth per event, bytes", math.NaN(), float64(run.mem1-run.mem0)/ev, "reported", nil)
	b.add("11", name+"chain keys left (warm-up included)", math.NaN(), float64(ck.keys), "", nil)
	b.add("11", name+"chain records left (hash fields, warm-up included)", math.NaN(), float64(ck.fields), "", nil)
	b.add("11", name+"bytes per chain key (MEMORY USAGE, sampled)", math.NaN(), ck.perKey(), "", nil)
	b.add("11", name+"bytes per chain record (MEMORY USAGE ÷ fields, sampled keys)", math.NaN(), ck.perField(), "", nil)
	b.note("scenario 11: %d events in %s at %d/s, used_memory %d → %d bytes; %d chain keys holding %d records, %d keys sampled, TTL left on one %s",
		run.events, dur, rate, run.mem0, run.mem1, ck.keys, ck.fields, ck.sampled, ck.ttl)
	return nil
}

// chainStats describes the recursion-chain keys left in Redis.
type chainStats struct {
	keys, fields int64 // every chain key, and their hash fields
	// sampled keys, their MEMORY USAGE and their fields
	sampled, sampledBytes, sampledFields int64
	ttl                                  time.Duration // left on the first key
}

func (c chainStats) perKey() float64 { return float64(c.sampledBytes) / float64(max(c.sampled, 1)) }

func (c chainStats) perField() float64 {
	return float64(c.sampledBytes) / float64(max(c.sampledFields, 1))
}

// chainKeys counts the recursion-chain keys of every queue shard
// (<ns>:{q<i>}:chain:*: the shared hashes of root chains, their overflow
// hashes and the chains' own hashes) and their records, and takes MEMORY
// USAGE of the first sample of them.
func (b *bench) chainKeys(ctx context.Context, sample int64) (chainStats, error) {
	var c chainStats
	rdb := b.rds.rdb
	it := rdb.Scan(ctx, 0, keys.Namespace+":{q*}:chain:*", 1000).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		n, err := rdb.HLen(ctx, k).Result()
		if err != nil {
			return c, err
		}
		c.keys++
		c.fields += n
		if c.sampled < sample {
			u, err := rdb.MemoryUsage(ctx, k).Result()
			if err != nil {
				return c, err
			}
			c.sampled++
			c.sampledBytes += u
			c.sampledFields += n
			if c.ttl == 0 {
				c.ttl, _ = rdb.PTTL(ctx, k).Result()
			}
		}
	}
	return c, it.Err()
}
