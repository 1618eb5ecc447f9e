// Package metrics holds the engine's Prometheus collectors. They live for
// the life of the process, so counts survive config reloads; the Caddy
// module registers them in each config's registry.
package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	EventsCaptured = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_captured_total",
		Help: "Events accepted and queued, by trigger.",
	}, []string{"trigger"})
	EventsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_rejected_total",
		Help: "Announced events that were refused (bad signals, payload, size) or could not be queued, by reason.",
	}, []string{"reason"})
	Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "deliveries_total",
		Help: "Delivery attempts by result (success, client_error, server_error, internal_error), and deliveries retry_scheduled, dropped (hook deleted) or blocked (recursion).",
	}, []string{"result"})
	DeliveryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "delivery_duration_seconds",
		Help:    "Duration of delivery requests.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
	})
	Deferred = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "deliveries_deferred_total",
		Help: "Deliveries put back in the schedule without an attempt, by reason: saturated, hook_disabled, rate_limited.",
	}, []string{"reason"})
	DeadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "dead_letters_total",
		Help: "Deliveries given up on, by reason: client_error, gone, exhausted, expired, hook_disabled, poison.",
	}, []string{"reason"})
	DeadLettersTrimmed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "dead_letters_trimmed_total",
		Help: "Oldest dead letters dropped to keep the dead-letter stream within its bounds, by bound: count (max_dead_letters), bytes (max_dead_letter_bytes).",
	}, []string{"bound"})
	RuntimesRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "runtimes_running",
		Help: "Delivery runtimes (Redis connection + workers) running in this process; 1 per Redis and namespace.",
	})
	WorkerSlots = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "worker_slots",
		Help: "Concurrent deliveries allowed, summed over running runtimes.",
	})
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "queue_depth",
		Help: "Entries per queue (events, ready, scheduled, dead), sampled every few seconds.",
	}, []string{"namespace", "queue"})
	Paused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "paused",
		Help: "1 while deliveries are paused (operator pause or silent mode).",
	}, []string{"namespace"})
	HooksDisabled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "hooks_disabled",
		Help: "Hooks disabled now, temporarily or until re-enabled (all processes).",
	}, []string{"namespace"})
	FirstAttemptLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "first_attempt_latency_seconds",
		Help:    "Time from capture to the first delivery attempt.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

// All returns the engine's collectors for registration.
func All() []prometheus.Collector {
	return []prometheus.Collector{EventsCaptured, EventsRejected, Deliveries, DeliveryDuration, Deferred, DeadLetters,
		DeadLettersTrimmed, RuntimesRunning, WorkerSlots, QueueDepth, Paused, HooksDisabled, FirstAttemptLatency}
}
