package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Redis deployment modes.
const (
	ModeSingle   = ""
	ModeCluster  = "cluster"
	ModeSentinel = "sentinel"
)

// Options configures a Store.
type Options struct {
	// URL of the Redis server: redis://[user:password@]host:port/db,
	// rediss:// for TLS, or unix:///path/to/socket. In cluster mode, more
	// seed nodes are given as ?addr=host:port&addr=…; in sentinel mode the
	// URL names a sentinel, with ?master_name=…&addr=<more sentinels>.
	URL string
	// Mode is ModeSingle, ModeCluster or ModeSentinel.
	Mode string
	// Namespace prefixes every key.
	Namespace string
	// Readers is how many blocking reads may wait at once; each pins a
	// connection of the dedicated blocking pool.
	Readers int
	// ReplicaAcks is how many replicas must have an event before AddEvent
	// succeeds (WAIT); 0 does not wait. Not for cluster mode.
	ReplicaAcks int
	// ReplicaTimeout bounds that wait. Default: 1s.
	ReplicaTimeout time.Duration
	// TLS, for rediss:// URLs: CAFile (PEM) verifies the server instead of
	// the system's roots; CertFile and KeyFile are a client certificate.
	CAFile, CertFile, KeyFile string
}

// Store reads and writes the streams of one namespace.
type Store struct {
	keys Keys
	rdb  redis.UniversalClient // ordinary commands
	blk  redis.UniversalClient // blocking XREADGROUP only: Close interrupts them

	replicaAcks    int
	replicaTimeout time.Duration

	// events coalesces concurrent captures' XADDs (and their WAIT);
	// work coalesces the delivery workers' admit, settle and defer calls.
	events, work *batcher
}

// New builds a Store. It does not dial: connections open on first use, so it
// is safe to call where nothing may touch the network yet.
func New(o Options) (*Store, error) {
	if o.Namespace == "" {
		return nil, errors.New("redis namespace is empty")
	}
	rdb, blk, err := newClients(o)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parsing redis URL %q (%s mode): %w", Redact(o.URL), modeName(o.Mode), err)
	}
	if o.ReplicaAcks > 0 && o.Mode == ModeCluster {
		return nil, errors.New("replica acknowledgements (WAIT) are not supported in cluster mode")
	}
	if o.ReplicaTimeout <= 0 {
		o.ReplicaTimeout = time.Second
	}
	s := &Store{keys: Keys{Namespace: o.Namespace}, rdb: rdb, blk: blk,
		replicaAcks: o.ReplicaAcks, replicaTimeout: o.ReplicaTimeout}
	s.events = newBatcher(rdb, batchMax, batchTimeout+o.ReplicaTimeout)
	if o.ReplicaAcks > 0 {
		s.events.tail = func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
			return p.Do(ctx, "WAIT", o.ReplicaAcks, o.ReplicaTimeout.Milliseconds())
		}
	}
	s.work = newBatcher(rdb, batchMax, batchTimeout)
	return s, nil
}

// Pipelines of coalesced calls: at most batchMax calls each, and
// batchTimeout for their I/O.
const (
	batchMax     = 256
	batchTimeout = 10 * time.Second
)

// newClients builds the command client and the blocking-read client.
// ctx deadlines bound socket I/O; nothing pre-dials.
func newClients(o Options) (rdb, blk redis.UniversalClient, err error) {
	readers := max(o.Readers, 1) + 2
	switch o.Mode {
	case ModeSingle:
		opt, err := redis.ParseURL(o.URL)
		return clientPair(o, opt, err, readers, redis.NewClient, func(c *redis.Options) settings {
			return settings{&c.TLSConfig, &c.ContextTimeoutEnabled, &c.MinIdleConns, &c.PoolSize}
		})
	case ModeCluster:
		opt, err := redis.ParseClusterURL(o.URL)
		return clientPair(o, opt, err, readers, redis.NewClusterClient, func(c *redis.ClusterOptions) settings {
			return settings{&c.TLSConfig, &c.ContextTimeoutEnabled, &c.MinIdleConns, &c.PoolSize}
		})
	case ModeSentinel:
		opt, err := redis.ParseFailoverURL(o.URL)
		if err == nil && opt.MasterName == "" {
			err = errors.New("sentinel mode needs ?master_name=<name> in the URL")
		}
		return clientPair(o, opt, err, readers, redis.NewFailoverClient, func(c *redis.FailoverOptions) settings {
			return settings{&c.TLSConfig, &c.ContextTimeoutEnabled, &c.MinIdleConns, &c.PoolSize}
		})
	default:
		return nil, nil, fmt.Errorf("unknown mode %q (want cluster or sentinel)", o.Mode)
	}
}

// settings points at the client options every mode shares.
type settings struct {
	tls           **tls.Config
	ctxTimeout    *bool
	minIdle, pool *int
}

// clientPair makes the two clients of a mode from its parsed options (or
// returns parseErr): one for ordinary commands, and one with a pool of
// readers for blocking reads, so a blocked read never waits for a
// connection behind ordinary commands.
func clientPair[O any, C redis.UniversalClient](o Options, opt *O, parseErr error, readers int,
	newClient func(*O) C, fields func(*O) settings) (redis.UniversalClient, redis.UniversalClient, error) {
	if parseErr != nil {
		return nil, nil, parseErr
	}
	f := fields(opt)
	var err error
	if *f.tls, err = tlsConfig(o, *f.tls); err != nil {
		return nil, nil, err
	}
	*f.ctxTimeout, *f.minIdle = true, 0
	blk := *opt
	*fields(&blk).pool = readers
	return newClient(opt), newClient(&blk), nil
}

// tlsConfig adds the CA and client certificate to the TLS settings the URL
// asked for (rediss://).
func tlsConfig(o Options, base *tls.Config) (*tls.Config, error) {
	if o.CAFile == "" && o.CertFile == "" {
		return base, nil
	}
	if base == nil {
		return nil, errors.New("a CA or client certificate needs a rediss:// URL")
	}
	cfg := base.Clone()
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading redis CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis CA %s holds no PEM certificate", o.CAFile)
		}
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading redis client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func modeName(m string) string {
	if m == ModeSingle {
		return "single"
	}
	return m
}

// Keys returns the store's key names.
func (s *Store) Keys() Keys { return s.keys }

// Client is the store's client for ordinary commands. Only tests and the
// benchmark tool use it, to look inside or to set up a backlog; the engine
// goes through the store's methods.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// closeWait bounds how long Close waits for go-redis to let go: with
// Redis or Sentinel down, a client's Close waits for a background dial
// probe (up to its 5s dial timeout) that holds the failover lock, and a
// pipeline can wait for that lock as well. A config reload runs Close, and
// Caddy's admin API gives a load 5s.
const closeWait = time.Second

// Close ends the pipelines in flight (their callers spool or retry, as on
// any Redis error), closes both clients, which ends blocked reads, and
// stops the batchers. What has not finished within closeWait finishes in
// the background: nothing is left to write by then.
func (s *Store) Close() error {
	s.events.shut()
	s.work.shut()
	done := make(chan error, 1)
	go func() {
		err := errors.Join(s.blk.Close(), s.rdb.Close())
		s.events.wait()
		s.work.wait()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(closeWait):
		return nil
	}
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}

// EnsureGroups creates both consumer groups (and their streams) if missing.
func (s *Store) EnsureGroups(ctx context.Context) error {
	for _, g := range [][2]string{{s.keys.Events(), GroupFanout}, {s.keys.Ready(), GroupDeliver}} {
		if err := s.createGroup(ctx, g[0], g[1]); err != nil {
			return err
		}
	}
	return nil
}

// createGroup starts the group at "0": both streams hold only unfinished
// work, so a group re-created after a Redis restart must see all of it.
func (s *Store) createGroup(ctx context.Context, stream, group string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("creating group %s on %s: %w", group, stream, err)
	}
	return nil
}

// AddEvent appends an event to the events stream. With ReplicaAcks set, it
// also waits (WAIT, on the same connection) until that many replicas have
// the write, and fails otherwise: an acknowledged event then survives a
// failover. The caller may retry a failed add; a retried event keeps its ID,
// so its deliveries keep their Idempotency-Keys.
func (s *Store) AddEvent(ctx context.Context, e *webhook.Event) (string, error) {
	args := &redis.XAddArgs{Stream: s.keys.Events(), Values: eventValues(e)}
	var add *redis.StringCmd
	op, err := s.events.do(ctx, func(p redis.Pipeliner, _ bool) { add = p.XAdd(ctx, args) })
	if err == nil {
		err = add.Err()
	}
	if err != nil {
		return "", fmt.Errorf("adding event %s: %w", e.ID, err)
	}
	if s.replicaAcks > 0 {
		wait := op.tail.(*redis.Cmd)
		if n, _ := wait.Int64(); n < int64(s.replicaAcks) {
			return "", fmt.Errorf("adding event %s: %d of %d replicas acknowledged it within %s", e.ID, n, s.replicaAcks, s.replicaTimeout)
		}
	}
	return add.Val(), nil
}

// Advance moves a read cursor of ReadEvents or ReadDeliveries: paging
// through the consumer's own pending entries ("0", then the last ID read)
// until there are none, then ">" for new ones. n is how many entries the
// last read returned; last gives the ID of the last one.
func Advance(cursor string, n int, last func() string) string {
	if cursor == ">" {
		return cursor
	}
	if n == 0 {
		return ">"
	}
	return last()
}

// ReadEvents reads events for consumer. cursor ">" reads new entries; "0"
// (or an entry ID) re-reads the consumer's own pending entries after it.
func (s *Store) ReadEvents(ctx context.Context, consumer, cursor string, count int64, block time.Duration) ([]EventMsg, error) {
	msgs, err := s.read(ctx, s.keys.Events(), GroupFanout, consumer, cursor, count, block)
	return decodeAll(msgs, decodeEvent), err
}

// ReadDeliveries reads deliveries for consumer; cursor as ReadEvents.
func (s *Store) ReadDeliveries(ctx context.Context, consumer, cursor string, count int64, block time.Duration) ([]DeliveryMsg, error) {
	msgs, err := s.read(ctx, s.keys.Ready(), GroupDeliver, consumer, cursor, count, block)
	return decodeAll(msgs, decodeDelivery), err
}

// ClaimEvents takes over events left pending by any consumer for at least
// minIdle, from start ("0-0" for the beginning). It returns the next start.
func (s *Store) ClaimEvents(ctx context.Context, consumer string, minIdle time.Duration, start string, count int64) ([]EventMsg, string, error) {
	msgs, next, err := s.claim(ctx, s.keys.Events(), GroupFanout, consumer, minIdle, start, count)
	return decodeAll(msgs, decodeEvent), next, err
}

// ClaimDeliveries is ClaimEvents for the deliveries stream.
func (s *Store) ClaimDeliveries(ctx context.Context, consumer string, minIdle time.Duration, start string, count int64) ([]DeliveryMsg, string, error) {
	msgs, next, err := s.claim(ctx, s.keys.Ready(), GroupDeliver, consumer, minIdle, start, count)
	return decodeAll(msgs, decodeDelivery), next, err
}

// FanOut queues deliveries and then settles the events they came from: two
// round trips, the second only once every delivery is queued. The streams
// are on different slots (nodes, in a Cluster), so one pipeline could
// settle the events while the deliveries' node refused them: that would
// lose them. A crash between the two leaves the events pending, and their
// replay queues the same deliveries again with the same idempotency keys
// (at-least-once).
func (s *Store) FanOut(ctx context.Context, eventIDs []string, deliveries []webhook.Delivery) error {
	if len(deliveries) > 0 {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range deliveries {
				p.XAdd(ctx, &redis.XAddArgs{Stream: s.keys.Ready(), Values: []any{"d", EncodeDelivery(&deliveries[i])}})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queueing %d deliveries of %d events: %w", len(deliveries), len(eventIDs), err)
		}
	}
	if err := s.ackDel(ctx, s.keys.Events(), GroupFanout, eventIDs); err != nil {
		return fmt.Errorf("settling %d fanned-out events: %w", len(eventIDs), err)
	}
	return nil
}

// SettleDeliveries acknowledges and deletes finished deliveries.
func (s *Store) SettleDeliveries(ctx context.Context, ids ...string) error {
	if err := s.ackDel(ctx, s.keys.Ready(), GroupDeliver, ids); err != nil {
		return fmt.Errorf("settling deliveries %v: %w", ids, err)
	}
	return nil
}

// ackDel acknowledges and deletes entries of a stream, in one round trip.
func (s *Store) ackDel(ctx context.Context, stream, group string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, stream, group, ids...)
		p.XDel(ctx, stream, ids...)
		return nil
	})
	return err
}

func (s *Store) read(ctx context.Context, stream, group, consumer, cursor string, count int64, block time.Duration) ([]redis.XMessage, error) {
	if block <= 0 {
		block = -1 // go-redis sends BLOCK 0 (forever) for a zero Block
	}
	res, err := s.blk.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, cursor},
		Count: count, Block: block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case redis.HasErrorPrefix(err, "NOGROUP"):
		// Redis lost the group (restart without persistence, FLUSHALL):
		// re-create it; the caller reads again.
		if cerr := s.createGroup(ctx, stream, group); cerr != nil {
			return nil, cerr
		}
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s as %s/%s: %w", stream, group, consumer, err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

func (s *Store) claim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, start string, count int64) ([]redis.XMessage, string, error) {
	msgs, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: consumer, MinIdle: minIdle, Start: start, Count: count,
	}).Result()
	if redis.HasErrorPrefix(err, "NOGROUP") {
		return nil, "0-0", s.createGroup(ctx, stream, group)
	}
	if err != nil {
		return nil, "0-0", fmt.Errorf("claiming from %s as %s/%s: %w", stream, group, consumer, err)
	}
	return msgs, next, nil
}

func decodeAll[T any](msgs []redis.XMessage, decode func(redis.XMessage) T) []T {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decode(m))
	}
	return out
}

// Redact returns a Redis URL without its password, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
