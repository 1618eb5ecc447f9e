package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/secret"
)

// Store is one namespace's Redis: the connection, and a store per
// capability over it. Each caller takes the capability it needs.
type Store struct {
	c       *conn
	queue   *Queue
	dead    *DeadLetters
	health  *Health
	log     *Log
	control *Control
	samples *Samples
	idem    *Idempotency
	legacy  *Legacy
	ordered *Ordered
	replays *Replays
	alerts  *Alerts
}

// New builds a Store. It does not dial: connections open on first use, so
// it is safe to call where nothing may touch the network yet.
func New(o Options) (*Store, error) {
	c, err := newConn(o)
	if err != nil {
		return nil, err
	}
	return &Store{c: c, queue: &Queue{conn: c, scheduled: make(chan struct{}, 1)}, dead: &DeadLetters{c}, health: &Health{c}, log: &Log{c},
		control: &Control{c}, samples: &Samples{c}, idem: &Idempotency{c}, legacy: &Legacy{c},
		ordered: &Ordered{c}, replays: &Replays{c}, alerts: &Alerts{c}}, nil
}

// Queue is the events and deliveries: capture, fan-out, delivery, retries.
func (s *Store) Queue() *Queue { return s.queue }

// DeadLetters is the deliveries given up on.
func (s *Store) DeadLetters() *DeadLetters { return s.dead }

// Health is the hooks' failure state and admission.
func (s *Store) Health() *Health { return s.health }

// Log is the hooks' delivery logs ("Recent events").
func (s *Store) Log() *Log { return s.log }

// Control is the operator's pause, the queue depths and the API's rate
// limits.
func (s *Store) Control() *Control { return s.control }

// Samples are the payloads test requests send.
func (s *Store) Samples() *Samples { return s.samples }

// Idempotency is the ingest clients' Idempotency-Keys.
func (s *Store) Idempotency() *Idempotency { return s.idem }

// Ordered is the queues of ordered hooks.
func (s *Store) Ordered() *Ordered { return s.ordered }

// Replays is the operator's replays of what was delivered, or failed.
func (s *Store) Replays() *Replays { return s.replays }

// Alerts is what the operator's alerts share across processes.
func (s *Store) Alerts() *Alerts { return s.alerts }

// Legacy drains the layout before shards.
func (s *Store) Legacy() *Legacy { return s.legacy }

// Hooks is the API-managed hooks; box seals and opens their secrets (nil:
// no key, and hooks with secrets can be neither saved nor loaded).
func (s *Store) Hooks(box *secret.Box) *Hooks { return &Hooks{conn: s.c, box: box} }

// Integrations is the chat integrations; box seals and opens their
// webhooks (nil: no key, and no integration can be saved or loaded).
func (s *Store) Integrations(box *secret.Box) *Integrations {
	return &Integrations{conn: s.c, box: box}
}

// Keys returns the store's key names.
func (s *Store) Keys() Keys { return s.c.keys }

// Client is the store's client for ordinary commands. Only tests and the
// benchmark tool use it, to look inside or to set up a backlog; everything
// else goes through the capability stores.
func (s *Store) Client() redis.UniversalClient { return s.c.rdb }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.c.rdb.Ping(ctx).Err() }

// Reachable checks cheaply that Redis answers (reachable.go).
func (s *Store) Reachable(ctx context.Context) error { return s.c.reachable(ctx) }

// EndReads ends the reads blocked in Redis at once (they return an
// error), and makes later ones fail; everything else still works. A
// runtime stopping its loops calls it, so that they need not wait for
// their blocking reads to time out.
func (s *Store) EndReads() error { return s.c.endReads() }

// Close ends the pipelines in flight, closes both clients and stops the
// batchers (conn.close).
func (s *Store) Close() error { return s.c.close() }
