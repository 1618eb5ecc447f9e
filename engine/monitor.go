package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

var (
	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "queue_depth",
		Help: "Entries per queue (events, ready, scheduled, dead), sampled every few seconds.",
	}, []string{"namespace", "queue"})
	pausedGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "paused",
		Help: "1 while deliveries are paused (operator pause or silent mode).",
	}, []string{"namespace"})
	hooksDisabled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "hooks_disabled",
		Help: "Hooks disabled now, temporarily or until re-enabled (all processes).",
	}, []string{"namespace"})
	firstAttemptLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "first_attempt_latency_seconds",
		Help:    "Time from capture to the first delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

// monitorInterval is how often queue depths and the pause flag are read.
const monitorInterval = 2 * time.Second

// monitorLoop samples queue depths into metrics and follows the
// cluster-wide pause flag.
func (r *Runtime) monitorLoop(ctx context.Context) {
	defer r.loops.Done()
	ns := r.store.Keys().Namespace
	for ctx.Err() == nil {
		if err := r.refreshPause(ctx); err == nil {
			if st, err := r.Stats(ctx); err == nil {
				queueDepth.WithLabelValues(ns, "events").Set(float64(st.Events))
				queueDepth.WithLabelValues(ns, "ready").Set(float64(st.Ready))
				queueDepth.WithLabelValues(ns, "scheduled").Set(float64(st.Scheduled))
				queueDepth.WithLabelValues(ns, "dead").Set(float64(st.DeadLetters))
				p := 0.0
				if st.Paused || st.Silent {
					p = 1
				}
				pausedGauge.WithLabelValues(ns).Set(p)
			}
			if n, err := r.store.DisabledHooks(ctx, time.Now()); err == nil {
				hooksDisabled.WithLabelValues(ns).Set(float64(n))
			}
		}
		sleep(ctx, monitorInterval)
	}
}

func (r *Runtime) refreshPause(ctx context.Context) error {
	v, err := r.store.Client().Get(ctx, r.store.Keys().Paused()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if was := r.paused.Swap(v == "1"); was != (v == "1") {
		r.log.Info("deliveries pause changed", zap.Bool("paused", v == "1"))
	}
	return nil
}

// Pause stops deliveries in every process sharing this Redis (within a few
// seconds); everything stays queued. Resume undoes it.
func (r *Runtime) Pause(ctx context.Context) error {
	if err := r.store.Client().Set(ctx, r.store.Keys().Paused(), "1", 0).Err(); err != nil {
		return fmt.Errorf("pausing deliveries: %w", err)
	}
	r.paused.Store(true)
	return nil
}

// Resume lets deliveries go again everywhere.
func (r *Runtime) Resume(ctx context.Context) error {
	if err := r.store.Client().Del(ctx, r.store.Keys().Paused()).Err(); err != nil {
		return fmt.Errorf("resuming deliveries: %w", err)
	}
	r.paused.Store(false)
	return nil
}
