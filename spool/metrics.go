package spool

import "github.com/prometheus/client_golang/prometheus"

// Collectors live for the life of the process; the Caddy module registers
// them in each config's registry, as the engine's.
var (
	spoolEvents = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "spool_events",
		Help: "Events in the local spool waiting for Redis, by namespace.",
	}, []string{"namespace"})
	spoolBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "spool_bytes",
		Help: "Size of the local spool file, by namespace (replayed records are freed when it empties).",
	}, []string{"namespace"})
	spooled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_spooled_total",
		Help: "Events written to the local spool because Redis did not take them, by namespace.",
	}, []string{"namespace"})
	replayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "events_replayed_total",
		Help: "Spooled events queued in Redis once it answered again, by namespace.",
	}, []string{"namespace"})
	spoolRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "webhooks", Name: "spool_rejected_total",
		Help: "Events lost because the spool could not take them, by reason: full, error.",
	}, []string{"namespace", "reason"})
)

// Collectors returns the spool's metrics.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{spoolEvents, spoolBytes, spooled, replayed, spoolRejected}
}
