package replay

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Feeding a replay: one process at a time holds the feeder's lock and
// hands the oldest unfinished replay to the queue a page at a time: only
// while the ready queue holds fewer than Depth deliveries (live ones go
// first: they wait behind at most that many), and no faster than Rate.

const (
	// lockTTL is how long the feeder's lock lasts unless renewed;
	// idleStep how often a process that does not feed looks again.
	lockTTL  = 5 * time.Second
	idleStep = 2 * time.Second
	// feedPage bounds one page; a page is a tenth of a second's budget at
	// most (and the queue's room), the next goes when the budget allows,
	// and a feeder waiting for room looks again after busyStep.
	feedPage = 200
	busyStep = 20 * time.Millisecond
	// jobsEvery is how often the feeder re-reads the replays (a new one,
	// one canceled) while it feeds.
	jobsEvery = time.Second
)

// Step feeds a page of the oldest unfinished replay, if this process
// holds the feeder's lock and the queue has room; the runtime calls it in
// a loop and waits what it returns.
func (r *Replayer) Step(ctx context.Context) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held, err := r.store.Replays.Lock(ctx, r.consumer, lockTTL)
	if err != nil || !held {
		r.current = nil
		return idleStep, err
	}
	now := time.Now()
	if r.current == nil || now.Sub(r.read) >= jobsEvery {
		if r.current, err = r.oldestUnfinished(ctx); err != nil {
			return idleStep, err
		}
		r.read = now
	}
	if r.current == nil {
		r.last = time.Time{}
		return idleStep, nil
	}
	// Read again: it may have been canceled since.
	got, err := r.store.Replays.Get(ctx, r.current.ID)
	if err != nil || (got.State != redisstore.ReplayQueued && got.State != redisstore.ReplayRunning) {
		r.current = nil
		return busyStep, nil
	}
	rec := &got
	cfg := r.cfg.Load()
	page := min(max(cfg.Rate/10, 1), cfg.Depth, feedPage)
	if r.last.IsZero() {
		r.tokens = float64(page)
	} else {
		r.tokens = min(r.tokens+now.Sub(r.last).Seconds()*float64(cfg.Rate), float64(max(cfg.Rate, page)))
	}
	r.last = now
	if r.tokens < float64(page) { // wait for a page's worth of the budget
		return max(time.Duration((float64(page)-r.tokens)/float64(cfg.Rate)*float64(time.Second)), busyStep), nil
	}
	d, err := r.store.Control.QueueDepths(ctx)
	if err != nil {
		return idleStep, err
	}
	n := min(int(r.tokens), cfg.Depth-int(d.Ready), feedPage, rec.Total-rec.Cursor)
	if n <= 0 {
		return busyStep, nil
	}
	items, err := r.store.Replays.Items(ctx, rec.ID, rec.Cursor, n)
	if err != nil {
		return idleStep, err
	}
	fed, gone, err := r.feed(ctx, items)
	if err != nil {
		return idleStep, err
	}
	gone += n - len(items) // the list expired or was canceled meanwhile
	r.tokens -= float64(n)
	if err := r.store.Replays.Advance(ctx, rec, n, fed, gone, now); err != nil {
		return idleStep, err
	}
	if rec.State == redisstore.ReplayDone {
		r.log.Info("replay done", zap.Int64("replay", rec.ID), zap.Int("queued", rec.Fed), zap.Int("gone", rec.Gone))
		r.current = nil
	}
	return max(time.Duration(float64(n)/float64(cfg.Rate)*float64(time.Second)), busyStep), nil
}

// oldestUnfinished is the replay to feed: the oldest queued or running.
func (r *Replayer) oldestUnfinished(ctx context.Context) (*redisstore.ReplayRecord, error) {
	recs, err := r.store.Replays.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if recs[i].State == redisstore.ReplayQueued || recs[i].State == redisstore.ReplayRunning {
			return &recs[i], nil
		}
	}
	return nil, nil
}

// feed queues a page of items: dead letters are redriven, log entries
// queued again as first attempts with their event's ID (so their
// Idempotency-Key). It returns how many were queued, and how many were no
// longer there (a log entry trimmed, a dead letter redriven or trimmed, a
// hook deleted).
func (r *Replayer) feed(ctx context.Context, items []string) (fed, gone int, err error) {
	var dead []string
	logs := map[int64][]int64{}
	var order []int64
	for _, it := range items {
		kind, rest, _ := strings.Cut(it, "|")
		switch kind {
		case "d":
			dead = append(dead, rest)
		case "l":
			h, e, _ := strings.Cut(rest, "|")
			hook, err1 := strconv.ParseInt(h, 10, 64)
			entry, err2 := strconv.ParseInt(e, 10, 64)
			if err1 != nil || err2 != nil {
				gone++
				continue
			}
			if _, ok := logs[hook]; !ok {
				order = append(order, hook)
			}
			logs[hook] = append(logs[hook], entry)
		default:
			gone++
		}
	}
	if len(dead) > 0 {
		n, err := r.store.DeadLetters.Redrive(ctx, dead...)
		if err != nil {
			return fed, gone, err
		}
		fed, gone = fed+n, gone+len(dead)-n
	}
	now := time.Now()
	var ds []webhook.Delivery
	for _, hook := range order {
		ids := logs[hook]
		if _, ok := r.hooks().Get(hook); !ok {
			gone += len(ids)
			continue
		}
		es, err := r.hookLog.Entries(ctx, hook, ids...)
		if err != nil {
			return fed, gone, err
		}
		gone += len(ids) - len(es)
		for _, e := range es {
			chain := e.Chain
			if chain == "" {
				chain = e.EventID
			}
			ds = append(ds, webhook.Delivery{EventID: e.EventID, HookID: hook, Trigger: e.Trigger, Chain: chain,
				At: now, Body: e.RequestData, Attempt: 1, Rendered: e.Rendered})
		}
	}
	if len(ds) > 0 {
		if err := r.store.Queue.AddDeliveries(ctx, ds); err != nil {
			return fed, gone, err
		}
		fed += len(ds)
	}
	return fed, gone, nil
}
