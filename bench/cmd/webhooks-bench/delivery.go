package main

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// store is a redisstore.Store on the bench Redis, so queued events and
// deliveries have exactly the engine's encoding.
func (b *bench) store() (*redisstore.Store, error) {
	return redisstore.New(redisstore.Options{URL: b.rds.url(), Namespace: keys.Namespace, Shards: b.shardCount()})
}

// fillEvents queues n push events as the capture handler would (AddEvent),
// ref(i) choosing each one's ref.
func (b *bench) fillEvents(n int, ref func(i int) string) error {
	st, err := b.store()
	if err != nil {
		return err
	}
	defer st.Close()
	return parallel(8, func(w, par int) error {
		for i := w; i < n; i += par {
			id := uuid.Must(uuid.NewV7()).String()
			r := ref(i)
			ev := &webhook.Event{ID: id, Trigger: "push", Project: "acme/app", Namespace: "acme", Ref: r,
				Chain: id, At: time.Now(), Body: eventBody(time.Now().UnixNano(), r)}
			if _, err := st.Queue().AddEvent(context.Background(), ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// parallel runs fn(w, par) for w in [0, par) at once and returns the
// first error.
func parallel(par int, fn func(w, par int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for w := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(w, par); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func mainRef(int) string { return "refs/heads/main" }

// deliveryRun is one candidate run: events are queued while Caddy is down,
// then Caddy starts and delivers; the rate is taken at the receiver from
// the first to the last arrival, and Redis's counters around the run give
// the commands and round trips per delivery.
type deliveryRun struct {
	rate      float64
	delivered int64
	stats     redisStats
	caddyCPU  float64 // seconds of CPU Caddy used for the run
	elapsed   time.Duration
}

func (b *bench) runDeliveries(name string, hooks []hookConf, extra []string, events int, ref func(int) string,
	expect int64, limit time.Duration, profile string) (deliveryRun, error) {
	b.stopCaddy()
	ctx := context.Background()
	if err := b.rds.reset(ctx); err != nil {
		return deliveryRun{}, err
	}
	b.rcv.reset()
	if err := b.fillEvents(events, ref); err != nil {
		return deliveryRun{}, fmt.Errorf("queueing events: %w", err)
	}
	s0, err := b.rds.stats(ctx)
	if err != nil {
		return deliveryRun{}, err
	}
	start := time.Now()
	if err := b.startCaddy(name, hooks, extra...); err != nil {
		return deliveryRun{}, err
	}
	var prof <-chan struct{}
	if profile != "" {
		prof = b.profile(profile, 5)
	}
	done := waitFor(limit, func() bool { return b.rcv.count.Load() >= expect })
	// Settles trail the last arrival by a round trip; count them too.
	waitFor(5*time.Second, func() bool { return b.readyDeliveries() == 0 })
	cpu, _ := cpuSeconds(b.caddy.cmd.Process.Pid) // includes start-up: a few ms
	s1, err := b.rds.stats(ctx)
	if err != nil {
		return deliveryRun{}, err
	}
	if prof != nil {
		<-prof
	}
	b.stopCaddy()
	run := deliveryRun{rate: b.rcv.rate(), delivered: b.rcv.count.Load(), stats: s1.delta(s0), caddyCPU: cpu, elapsed: time.Since(start)}
	if !done {
		b.errs += expect - run.delivered
		b.note("%s: only %d of %d deliveries arrived within %s", name, run.delivered, expect, limit)
	}
	return run, nil
}

// baselineDeliveries POSTs the same bodies with the same concurrency
// straight to the receiver.
func (b *bench) baselineDeliveries(paths []string, n int) float64 {
	b.rcv.reset()
	urls := make([]string, len(paths))
	for i, p := range paths {
		urls[i] = "http://" + b.rcvAddr + p
	}
	_, errs := postN(newClient(b.o.workers), urls, eventBody(time.Now().UnixNano(), "refs/heads/main"), n, b.o.workers)
	b.errs += errs
	return b.rcv.rate()
}

// delivery runs scenario 3 (and 7 from the same runs): 1 hook and 100 hooks.
func (b *bench) delivery() error {
	total := 20000
	if b.o.smoke {
		total = 300
	}
	type variant struct {
		id, name string
		hooks    int
		extra    []string
		smoke    bool
	}
	vs := []variant{
		{"3a", "1 hook, hook_concurrency = workers", 1, []string{fmt.Sprintf("hook_concurrency %d", b.o.workers)}, true},
		{"3b", "100 hooks", 100, nil, true},
		{"3c", "1 hook, default hook_concurrency 8", 1, nil, false},
	}
	for _, v := range vs {
		if b.o.smoke && !v.smoke || !b.want["3"] && !b.want["7"] && !b.want[v.id] {
			continue
		}
		hooks := fastHooks(v.hooks)
		paths := make([]string, len(hooks))
		for i, h := range hooks {
			paths[i] = h.path
		}
		events := total / v.hooks
		expect := int64(events * v.hooks)
		var base, cand, cmds, rts, evals, cpus, caddyCPUs []float64
		var last redisStats
		for r := 0; r < b.o.rounds; r++ {
			base = append(base, b.baselineDeliveries(paths, int(expect)))
			run, err := b.runDeliveries("delivery-"+v.id, hooks, v.extra, events, mainRef, expect, 3*time.Minute, "")
			if err != nil {
				return err
			}
			cand = append(cand, run.rate)
			n := float64(run.delivered)
			cmds = append(cmds, float64(run.stats.total())/n)
			rts = append(rts, float64(run.stats.writes)/n)
			evals = append(evals, float64(run.stats.calls["evalsha"]+run.stats.calls["eval"])/n)
			cpus = append(cpus, run.stats.cpu*1e6/n)
			caddyCPUs = append(caddyCPUs, run.caddyCPU*1e6/n)
			last = run.stats
			logf("scenario %s round %d: baseline %.0f/s, caddy %.0f/s (%d delivered), %.2f cmds and %.2f round trips per delivery",
				v.id, r+1, base[r], run.rate, run.delivered, cmds[r], rts[r])
		}
		b.add(v.id, "delivery "+v.name+": deliveries/s", median(base), median(cand), "≥ 0.5", ratioAtLeast(0.5))
		if v.id == "3a" || v.id == "3b" {
			b.add("7", "Redis commands per delivery ("+v.name+", in-script commands included)", math.NaN(), median(cmds), "", nil)
			b.add("7", "EVALSHA per delivery ("+v.name+")", math.NaN(), median(evals), "", nil)
			b.add("7", "Redis CPU µs per delivery ("+v.name+")", math.NaN(), median(cpus), "", nil)
			b.add("7", "Caddy CPU µs per delivery ("+v.name+")", math.NaN(), median(caddyCPUs), "", nil)
			// §9.5 of the Redis design estimates ≈ 1.03 round trips per delivery.
			b.add("7", "Redis round trips per delivery ("+v.name+"; reply writes) vs design estimate", 1.03, median(rts), "lower is better", nil)
			b.note("scenario 7, %s, commands per delivery: %s", v.name, breakdown(last, expect))
		}
		if (v.id == "3a" || v.id == "3b") && b.o.pprofDir != "" {
			prof := int(math.Max(median(cand)*8, float64(expect)))
			ev := prof / v.hooks
			if _, err := b.runDeliveries("delivery-profile", hooks, v.extra, ev, mainRef, int64(ev*v.hooks), 3*time.Minute, "scenario"+v.id+"-delivery"); err != nil {
				return err
			}
		}
	}
	return nil
}

// breakdown lists each command's calls and Redis time per delivery,
// largest first (a script's time includes the commands it runs).
func breakdown(s redisStats, n int64) string {
	type kv struct {
		k string
		v int64
	}
	var all []kv
	for k, v := range s.calls {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	var parts []string
	for _, e := range all {
		if per := float64(e.v) / float64(n); per >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f (%.1f µs)", e.k, per, float64(s.usec[e.k])/float64(n)))
		}
	}
	return strings.Join(parts, ", ")
}
