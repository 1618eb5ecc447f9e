package delivery

import (
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logResult writes one line per attempt for log pipelines (Loki,
// Elasticsearch): a failure at info level, a success at debug level. The
// line names the hook, the event (its ID and X-Gitlab-Event-UUID), the
// X-Gitlab-Webhook-UUID sent, the status and outcome, duration and latency,
// the attempt and, in a trace, its trace ID (and the egress proxy, masked,
// when it went through one); never a secret: the URL is
// masked and the error is the one the hook's log shows. What that error
// leaves out (the address a name resolved to, the resolver's) is added at
// debug level only. kind is hooklog's (delivery, test or resend), or alert.
func (d *Deliverer) logResult(kind string, req *Request, res *Result) {
	level, msg := zapcore.DebugLevel, "webhook delivered"
	if !res.Success() {
		level, msg = zapcore.InfoLevel, "webhook delivery failed"
	}
	c := d.log.Check(level, msg)
	if c == nil {
		return
	}
	h := req.Hook
	fields := make([]zap.Field, 0, 16)
	fields = append(fields,
		zap.Int64("hook_id", h.ID), zap.String("hook", h.Name), zap.String("url", h.MaskedURL()),
		zap.String("kind", kind), zap.String("trigger", string(req.Trigger)),
		zap.String("event", req.EventID), zap.String("event_uuid", req.Chain), zap.String("webhook_uuid", res.WebhookUUID),
		zap.Int("attempt", req.Attempt), zap.Int("status", res.Status), zap.String("outcome", res.Outcome()),
		zap.Duration("duration", res.Duration), zap.Duration("latency", time.Since(req.At)),
	)
	if res.TraceID != "" {
		fields = append(fields, zap.String("trace_id", res.TraceID))
	}
	if res.Proxy != "" {
		fields = append(fields, zap.String("egress_proxy", res.Proxy))
	}
	if res.Err != nil {
		fields = append(fields, zap.String("error", res.Err.Error()))
	}
	// The addresses the answer leaves out are the operator's to see.
	if res.detail != nil && d.log.Core().Enabled(zapcore.DebugLevel) {
		fields = append(fields, zap.String("detail", res.detail.Error()))
	}
	c.Write(fields...)
}
