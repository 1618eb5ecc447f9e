// Package metrics holds the engine's Prometheus collectors. They live for
// the life of the process, so counts survive config reloads; the Caddy
// module registers them in each config's registry.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// The collectors; each help text says what it counts.
var (
	EventsCaptured = counter("events_captured_total",
		"Events accepted and queued, by trigger.", "trigger")
	EventsRejected = counter("events_rejected_total",
		"Announced events that were refused (bad signals, payload, size) or could not be queued, by reason.", "reason")
	Deliveries = counter("deliveries_total",
		"Delivery attempts by result (success, client_error, server_error, internal_error), and deliveries retry_scheduled, dropped (hook deleted), blocked (recursion) or aborted (shutdown; left pending for recovery).", "result")
	DeliveryDuration = histogram("delivery_duration_seconds",
		"Duration of delivery requests.",
		prometheus.ExponentialBuckets(0.001, 4, 9))
	Deferred = counter("deliveries_deferred_total",
		"Deliveries put back in the schedule without an attempt, by reason: saturated, hook_disabled, rate_limited.", "reason")
	DeadLetters = counter("dead_letters_total",
		"Deliveries given up on, by reason: client_error, gone, exhausted, expired, hook_disabled, poison.", "reason")
	DeadLettersTrimmed = counter("dead_letters_trimmed_total",
		"Oldest dead letters dropped to keep the dead-letter stream within its bounds, by bound: count (max_dead_letters), bytes (max_dead_letter_bytes).", "bound")
	RuntimesRunning = gauge("runtimes_running",
		"Delivery runtimes (Redis connection + workers) running in this process; 1 per Redis and namespace.")
	WorkerSlots = gauge("worker_slots",
		"Concurrent deliveries allowed, summed over running runtimes.")
	QueueDepth = gauges("queue_depth",
		"Entries per queue (events, ready, scheduled, dead), sampled every few seconds.", "namespace", "queue")
	Paused = gauges("paused",
		"1 while deliveries are paused (operator pause or silent mode).", "namespace")
	RedisDown = gauges("redis_down",
		"1 while Redis is known to be unreachable: an enqueue found it so, and a probe has not yet found it answering.", "namespace", "redis")
	EnqueuesSkipped = counter("enqueues_skipped_total",
		"Events not tried in Redis because it was known to be unreachable; their callers spooled them at once.", "namespace", "redis")
	HooksDisabled = gauges("hooks_disabled",
		"Hooks disabled now, temporarily or until re-enabled (all processes).", "namespace")
	OrderedLate = counter1("ordered_late_total",
		"Deliveries of ordered hooks that reached their queue after a later delivery of the hook had gone (their event reached Redis after its capture mark expired); they go next.")
	QueueOldestAge = gauges("queue_oldest_age_seconds",
		"How long the oldest delivery waiting for its first attempt (queue ready) has waited since its event was captured, sampled every few seconds.", "namespace", "queue")
	Alerts = counter("alerts_total",
		"Alerts raised for the operator's endpoints, by type.", "type")
	AlertsDropped = counter1("alerts_dropped_total",
		"Alerts lost before they were queued (too many waiting, or Redis refused them).")
	AlertsFailed = counter1("alerts_failed_total",
		"Alerts sent straight to an operator's endpoint (Redis down or back) that failed every attempt.")
	FirstAttemptLatency = histogram("first_attempt_latency_seconds",
		"Time from capture to the first delivery attempt.",
		prometheus.ExponentialBuckets(0.001, 2, 16))
)

// opts names a collector in Caddy's namespace: caddy_webhooks_<name>.
func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: "caddy", Subsystem: "webhooks", Name: name, Help: help}
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), labels)
}

func gauges(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts(opts(name, help)), labels)
}

func counter1(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts(opts(name, help)))
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	o := opts(name, help)
	return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: o.Namespace, Subsystem: o.Subsystem,
		Name: o.Name, Help: o.Help, Buckets: buckets})
}

// All returns the engine's collectors for registration.
func All() []prometheus.Collector {
	return []prometheus.Collector{EventsCaptured, EventsRejected, Deliveries, DeliveryDuration, Deferred, DeadLetters,
		DeadLettersTrimmed, RuntimesRunning, WorkerSlots, QueueDepth, Paused, RedisDown, EnqueuesSkipped, HooksDisabled,
		FirstAttemptLatency, OrderedLate, QueueOldestAge, Alerts, AlertsDropped, AlertsFailed}
}
