package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"
)

// bigSize is scenario 9's payload size.
const bigSize = 20 << 10

// bigPayload is scenario 9: 20 KB events for 20 hooks. Deliveries are
// paused (the admin API), events go through the capture path and are
// fanned out; Redis's used_memory before and after, divided by the queued
// deliveries, is what one queued delivery costs. Then deliveries resume and
// the rate is taken at the receiver; the baseline POSTs the same bodies
// straight to the receiver with the same concurrency.
func (b *bench) bigPayload() error {
	hooks := fastHooks(20)
	paths := make([]string, len(hooks))
	for i, h := range hooks {
		paths[i] = h.path
	}
	events := b.o.bigEvents
	expect := int64(events * len(hooks))
	var perDelivery, base, cand []float64
	for r := 0; r < b.o.rounds; r++ {
		bpd, rate, err := b.bigRound(hooks, events, expect)
		if err != nil {
			return err
		}
		b.rcv.reset()
		_, errs := postN(newClient(b.o.workers), urlsOf(b.rcvAddr, paths), sizedBody(time.Now().UnixNano(), "refs/heads/main", bigSize), int(expect), b.o.workers)
		b.errs += errs
		perDelivery, cand, base = append(perDelivery, bpd), append(cand, rate), append(base, b.rcv.rate())
		logf("scenario 9 round %d: %.0f Redis bytes per queued delivery, %.0f deliveries/s (baseline %.0f/s); load %s",
			r+1, bpd, rate, base[r], loadAvg())
	}
	name := fmt.Sprintf("20 KB payload × 20 hooks, %d events: ", events)
	b.add("9", name+"Redis bytes per queued delivery (paused)", math.NaN(), median(perDelivery), "reported (v2 layout: lower)", nil)
	b.add("9", name+"deliveries/s once resumed", median(base), median(cand), "reported (v2 layout: higher)", nil)
	return nil
}

func urlsOf(addr string, paths []string) []string {
	urls := make([]string, len(paths))
	for i, p := range paths {
		urls[i] = "http://" + addr + p
	}
	return urls
}

// bigRound queues events × hooks deliveries while paused and drains them;
// it returns Redis bytes per queued delivery and deliveries/s.
func (b *bench) bigRound(hooks []hookConf, events int, expect int64) (float64, float64, error) {
	ctx := context.Background()
	b.stopCaddy()
	if err := b.rds.reset(ctx); err != nil {
		return 0, 0, err
	}
	b.rcv.reset()
	if err := b.startCaddy("big", hooks); err != nil {
		return 0, 0, err
	}
	defer b.stopCaddy()
	admin := &http.Client{Timeout: 10 * time.Second}
	if err := do(admin, http.MethodPost, "http://"+b.caddy.admin+"/webhooks/pause", nil); err != nil {
		return 0, 0, fmt.Errorf("scenario 9: pausing deliveries: %w", err)
	}
	mem0, err := b.rds.infoInt(ctx, "memory", "used_memory")
	if err != nil {
		return 0, 0, err
	}
	_, errs := postN(newClient(8), []string{b.candURL(fmt.Sprintf("/event?size=%d", bigSize))}, nil, events, 8)
	b.errs += errs
	if !waitFor(time.Minute, func() bool { return b.queuedEvents() == 0 && b.readyDeliveries() >= expect }) {
		return 0, 0, fmt.Errorf("scenario 9: %d of %d deliveries queued within a minute", b.readyDeliveries(), expect)
	}
	mem1, err := b.rds.infoInt(ctx, "memory", "used_memory")
	if err != nil {
		return 0, 0, err
	}
	queued := b.readyDeliveries()
	if b.rcv.count.Load() > 0 {
		return 0, 0, fmt.Errorf("scenario 9: %d deliveries went out while paused", b.rcv.count.Load())
	}
	if err := do(admin, http.MethodPost, "http://"+b.caddy.admin+"/webhooks/resume", nil); err != nil {
		return 0, 0, fmt.Errorf("scenario 9: resuming deliveries: %w", err)
	}
	if !waitFor(3*time.Minute, func() bool { return b.rcv.count.Load() >= expect }) {
		b.errs += expect - b.rcv.count.Load()
		b.note("scenario 9: only %d of %d deliveries arrived within 3 minutes", b.rcv.count.Load(), expect)
	}
	return float64(mem1-mem0) / float64(queued), b.rcv.rate(), nil
}
