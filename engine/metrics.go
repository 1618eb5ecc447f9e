package engine

import "github.com/prometheus/client_golang/prometheus"

// Collectors live for the life of the process, so counts survive config
// reloads; the Caddy module registers them in each config's registry.
var (
	eventsCaptured = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_captured_total",
		Help: "Events accepted and queued, by trigger.",
	}, []string{"trigger"})
	eventsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_rejected_total",
		Help: "Announced events that were refused (bad signals, payload, size) or could not be queued, by reason.",
	}, []string{"reason"})
	deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "deliveries_total",
		Help: "Delivery attempts by result (success, client_error, server_error, internal_error), and deliveries retry_scheduled, dropped (hook deleted) or blocked (recursion).",
	}, []string{"result"})
	deliveryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "delivery_duration_seconds",
		Help:    "Duration of delivery requests.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	deferred = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "deliveries_deferred_total",
		Help: "Deliveries put back in the schedule without an attempt, by reason: saturated, hook_disabled, rate_limited.",
	}, []string{"reason"})
	deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "dead_letters_total",
		Help: "Deliveries given up on, by reason: client_error, gone, exhausted, expired, hook_disabled, poison.",
	}, []string{"reason"})
	deadLettersTrimmed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "dead_letters_trimmed_total",
		Help: "Oldest dead letters dropped to keep the dead-letter stream within its bounds, by bound: count (max_dead_letters), bytes (max_dead_letter_bytes).",
	}, []string{"bound"})
	runtimesRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "runtimes_running",
		Help: "Delivery runtimes (Redis connection + workers) running in this process; 1 per Redis and namespace.",
	})
	workerSlots = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "worker_slots",
		Help: "Concurrent deliveries allowed, summed over running runtimes.",
	})
)

// Collectors returns the engine's metrics for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{eventsCaptured, eventsRejected, deliveries, deliveryDuration, deferred, deadLetters,
		deadLettersTrimmed, runtimesRunning, workerSlots, queueDepth, pausedGauge, hooksDisabled, firstAttemptLatency}
}

// CountRejected records an event refused before it reached the engine.
func CountRejected(reason string) { eventsRejected.WithLabelValues(reason).Inc() }
