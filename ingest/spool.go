package ingest

import (
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/spool"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// SpoolEvent keeps an event Redis did not take in the local spool sp (nil:
// off), to be queued when Redis answers again; it reports whether the
// event is safe. Shared by webhooks_capture and webhooks_ingest.
func SpoolEvent(sp *spool.Spool, log *zap.Logger, ev *webhook.Event, redisErr error) bool {
	fields := []zap.Field{zap.String("event_id", ev.ID), zap.String("trigger", ev.Trigger),
		zap.String("project", ev.Project), zap.String("namespace", ev.Namespace), zap.NamedError("redis_error", redisErr)}
	if sp == nil {
		engine.CountRejected("enqueue_failed")
		log.Error("event lost: could not queue it in redis (spool_dir is off)", fields...)
		return false
	}
	if err := sp.Append(ev); err != nil {
		engine.CountRejected("enqueue_failed")
		log.Error("event lost: could not queue it in redis nor spool it", append(fields, zap.Error(err))...)
		return false
	}
	log.Warn("event spooled: redis did not take it; it is queued once redis answers", fields...)
	return true
}
