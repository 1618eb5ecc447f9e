// Package ingest takes events that are not born from a response
// (background jobs, git hooks, cron) over HTTP: the webhooks_ingest
// endpoint as a plain http.Handler, without Caddy. A client POSTs one
// event as a JSON object, or a batch as NDJSON; every event is validated
// before any is queued, then each goes to Redis, else to the local spool.
// A client's Idempotency-Key makes a retry answer with the first event's
// ID. The payload decoding and the spool fallback are shared with
// webhooks_capture.
package ingest

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/api"
	"github.com/grt-continuation/caddy-webhooks/spool"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Runtime is the queue events go to. *engine.Runtime implements it.
type Runtime interface {
	// Enqueue makes an event durable in Redis; while Redis is known to be
	// down it fails at once.
	Enqueue(ctx context.Context, ev *webhook.Event) error
	// RedisDown tells whether Enqueue fails at once now.
	RedisDown() bool
	// RedisFailed reports an error of the endpoint's own Redis call (the
	// idempotency key), which may start an outage as a failed Enqueue does.
	RedisFailed(err error)
	// Capturing counts the events captured from at on until done: a batch
	// is built before it is queued, and ordered hooks wait for it.
	Capturing(at time.Time) (done func())
}

// Settings bound what the endpoint takes; webhooks_ingest documents them
// and fills in their defaults.
type Settings struct {
	// MaxBody caps one event's payload; a larger one gets 413.
	MaxBody int64
	// MaxRequest caps a request body (a whole batch), compressed and
	// decoded alike; a larger one gets 413.
	MaxRequest int64
	// MaxBatch caps the events of one request; more get 413.
	MaxBatch int
	// EnqueueTimeout bounds the wait for Redis to take each event before
	// it is spooled.
	EnqueueTimeout time.Duration
	// IdempotencyWindow is how long an Idempotency-Key is remembered.
	IdempotencyWindow time.Duration
}

// Options configure the handler.
type Options struct {
	Settings
	// Tokens may post events, each within its scopes, as the hooks API's.
	Tokens []api.Token
	// TrustUpstreamAuth lets requests through without a token: something
	// in front (Caddy's forward_auth) already authorised them.
	TrustUpstreamAuth bool
	// Spool keeps the events Redis does not take; nil: off (they are lost).
	Spool  *spool.Spool
	Logger *zap.Logger
}

// Handler serves the events endpoint.
type Handler struct {
	Settings
	auth   *api.Authenticator
	rt     Runtime
	keys   Idempotency
	spool  *spool.Spool
	logger *zap.Logger
}

// New builds the handler; it checks the tokens as the hooks API does.
func New(rt Runtime, keys Idempotency, opt Options) (*Handler, error) {
	auth, err := api.NewAuthenticator(opt.Tokens, opt.TrustUpstreamAuth)
	if err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	return &Handler{Settings: opt.Settings, auth: auth, rt: rt, keys: keys, spool: opt.Spool, logger: opt.Logger}, nil
}
