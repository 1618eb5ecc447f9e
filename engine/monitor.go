package engine

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
)

// monitorInterval is how often queue depths and the pause flag are read.
const monitorInterval = 2 * time.Second

// monitor follows the cluster-wide pause flag and samples queue depths and
// disabled hooks into metrics, in one round trip. A failed read is tried
// again at the next interval.
func (r *Runtime) monitor(ctx context.Context) {
	snap, err := r.store.Control().Snapshot(ctx, time.Now())
	if err != nil {
		return
	}
	if r.deliver.SetPaused(snap.Paused) {
		r.log.Info("deliveries pause changed", zap.Bool("paused", snap.Paused))
	}
	ns := r.store.Keys().Namespace
	d := snap.Depths
	metrics.QueueDepth.WithLabelValues(ns, "events").Set(float64(d.Events))
	metrics.QueueDepth.WithLabelValues(ns, "ready").Set(float64(d.Ready))
	metrics.QueueDepth.WithLabelValues(ns, "scheduled").Set(float64(d.Scheduled))
	metrics.QueueDepth.WithLabelValues(ns, "dead").Set(float64(d.Dead))
	p := 0.0
	if r.deliver.Paused() || r.cfg.Load().Silent {
		p = 1
	}
	metrics.Paused.WithLabelValues(ns).Set(p)
	metrics.HooksDisabled.WithLabelValues(ns).Set(float64(snap.DisabledHooks))
	metrics.QueueOldestAge.WithLabelValues(ns, "ready").Set(snap.OldestReady.Seconds())
	r.alerts.QueueAge(ctx, snap.OldestReady, d.Ready)
}

// Pause stops deliveries in every process sharing this Redis (within a few
// seconds); everything stays queued. Resume undoes it.
func (r *Runtime) Pause(ctx context.Context) error {
	if err := r.store.Control().SetPaused(ctx, true); err != nil {
		return fmt.Errorf("pausing deliveries: %w", err)
	}
	r.deliver.SetPaused(true)
	return nil
}

// Resume lets deliveries go again everywhere.
func (r *Runtime) Resume(ctx context.Context) error {
	if err := r.store.Control().SetPaused(ctx, false); err != nil {
		return fmt.Errorf("resuming deliveries: %w", err)
	}
	r.deliver.SetPaused(false)
	return nil
}
