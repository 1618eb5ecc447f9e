package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// backlogDrain is scenario 6: n deliveries (1 KB payloads, spread over 100
// hooks) are put straight on the ready stream with the engine's encoding
// while Caddy is down; then Caddy starts and drains them. Caddy's RSS is
// sampled from /proc during the drain; the baseline is the same Caddy idle
// on an empty queue.
func (b *bench) backlogDrain() error {
	hooks := fastHooks(100)
	ctx := context.Background()
	b.stopCaddy()
	if err := b.rds.reset(ctx); err != nil {
		return err
	}
	if err := b.startCaddy("backlog-idle", hooks); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	idle, err := rssMB(b.caddy.pid())
	if err != nil {
		return err
	}
	b.stopCaddy()

	t0 := time.Now()
	if err := b.fillDeliveries(b.o.backlog, len(hooks)); err != nil {
		return fmt.Errorf("queueing deliveries: %w", err)
	}
	mem, _ := b.rds.rdb.Info(ctx, "memory").Result()
	logf("scenario 6: queued %d deliveries in %s (redis %s)", b.o.backlog, time.Since(t0).Round(time.Millisecond), usedMemory(mem))
	b.rcv.reset()
	start := time.Now()
	if err := b.startCaddy("backlog", hooks); err != nil {
		return err
	}
	defer b.stopCaddy()
	var peak float64
	deadline := start.Add(b.o.backlogTime)
	for time.Now().Before(deadline) && b.rcv.count.Load() < int64(b.o.backlog) {
		if r, err := rssMB(b.caddy.pid()); err == nil {
			peak = math.Max(peak, r)
		}
		time.Sleep(250 * time.Millisecond)
	}
	n := b.rcv.count.Load()
	rate := b.rcv.rate()
	b.add("6", fmt.Sprintf("backlog of %d deliveries: Caddy RSS MB (baseline: idle, empty queue; candidate: peak while draining)", b.o.backlog),
		idle, peak, "< 150 MB", func(r row) bool { return r.cand < 150 })
	b.add("6", "backlog drain rate, deliveries/s", math.NaN(), rate, "reported", nil)
	if n < int64(b.o.backlog) {
		b.note("scenario 6: drained %d of %d deliveries in the %s allowed (%.0f/s); the rest would take ~%.0f s more",
			n, b.o.backlog, b.o.backlogTime, rate, float64(int64(b.o.backlog)-n)/math.Max(rate, 1))
	} else {
		b.note("scenario 6: drained all %d deliveries in %s", n, time.Since(start).Round(time.Second))
	}
	return nil
}

// fillDeliveries XADDs n deliveries to the ready stream (pipelined), each
// encoded by webhook.Delivery.Encode as the fan-out does.
func (b *bench) fillDeliveries(n, hooks int) error {
	st, err := b.store()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Queue().EnsureGroups(context.Background()); err != nil {
		return err
	}
	body := eventBody(time.Now().UnixNano(), "refs/heads/main")
	const batch = 1000
	return parallel(4, func(w, par int) error {
		for lo := w * batch; lo < n; lo += par * batch {
			ds := make([]webhook.Delivery, 0, batch)
			for i := lo; i < min(lo+batch, n); i++ {
				id := uuid.Must(uuid.NewV7()).String()
				ds = append(ds, webhook.Delivery{EventID: id, HookID: int64(i%hooks + 1), Trigger: "push", Chain: id,
					At: time.Now(), Body: body, Attempt: 1, Shared: true})
			}
			if err := st.Queue().AddDeliveries(context.Background(), ds); err != nil {
				return err
			}
		}
		return nil
	})
}

func usedMemory(info string) string {
	var s string
	for _, l := range splitLines(info) {
		if v, ok := cutPrefix(l, "used_memory_human:"); ok {
			s = v
		}
	}
	return s
}
