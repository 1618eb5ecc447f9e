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

// monitor follows the cluster-wide pause flag and samples queue depths
// into metrics. A failed read is tried again at the next interval.
func (r *Runtime) monitor(ctx context.Context) {
	paused, err := r.store.Control().Paused(ctx)
	if err != nil {
		return
	}
	if r.deliver.SetPaused(paused) {
		r.log.Info("deliveries pause changed", zap.Bool("paused", paused))
	}
	ns := r.store.Keys().Namespace
	var ready int64
	if st, err := r.Stats(ctx); err == nil {
		ready = st.Ready
		metrics.QueueDepth.WithLabelValues(ns, "events").Set(float64(st.Events))
		metrics.QueueDepth.WithLabelValues(ns, "ready").Set(float64(st.Ready))
		metrics.QueueDepth.WithLabelValues(ns, "scheduled").Set(float64(st.Scheduled))
		metrics.QueueDepth.WithLabelValues(ns, "dead").Set(float64(st.DeadLetters))
		p := 0.0
		if st.Paused || st.Silent {
			p = 1
		}
		metrics.Paused.WithLabelValues(ns).Set(p)
	}
	if n, err := r.store.Health().DisabledHooks(ctx, time.Now()); err == nil {
		metrics.HooksDisabled.WithLabelValues(ns).Set(float64(n))
	}
	if age, err := r.store.Alerts().OldestReady(ctx, time.Now()); err == nil {
		metrics.QueueOldestAge.WithLabelValues(ns, "ready").Set(age.Seconds())
		r.alerts.QueueAge(ctx, age, ready)
	}
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
