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
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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
	// Shards is how many queue shards (hash slots) the events and
	// deliveries are spread over; at most MaxShards. Default: 1, which
	// suits one Redis server; a Cluster wants several per master.
	Shards int
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

// conn is the connection every capability store of a namespace shares:
// the two clients, the key names, the shard counts and the batchers.
type conn struct {
	keys   Keys
	shards int
	// cluster is set for a Redis Cluster: a script's keys must then share
	// one slot.
	cluster bool
	// seen is the most shards any process of the namespace has written to
	// (Queue.NoteShards): after `shards` is lowered, the shards beyond it
	// are still read until they are empty.
	seen atomic.Int32
	rdb  redis.UniversalClient // ordinary commands
	blk  redis.UniversalClient // blocking XREADGROUP only: Close interrupts them

	replicaAcks    int
	replicaTimeout time.Duration

	// events coalesces concurrent captures' XADDs (and their WAIT);
	// work coalesces the delivery workers' admit, settle and defer calls.
	events, work *batcher

	// stopReads closes blk once: blocked reads end at once.
	stopReads sync.Once
	blkErr    error
}

// endReads closes the blocking client: reads blocked in Redis end at once,
// with an error, and later ones fail.
func (c *conn) endReads() error {
	c.stopReads.Do(func() { c.blkErr = c.blk.Close() })
	return c.blkErr
}

// newConn builds the connection of Options. It does not dial: connections open on first use, so it
// is safe to call where nothing may touch the network yet.
func newConn(o Options) (*conn, error) {
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
	if o.Shards > MaxShards || o.Shards < 0 {
		return nil, fmt.Errorf("shards must be between 1 and %d, got %d", MaxShards, o.Shards)
	}
	c := &conn{keys: Keys{Namespace: o.Namespace}, shards: max(o.Shards, 1), cluster: o.Mode == ModeCluster, rdb: rdb, blk: blk,
		replicaAcks: o.ReplicaAcks, replicaTimeout: o.ReplicaTimeout}
	c.events = newBatcher(rdb, batchMax, batchTimeout+o.ReplicaTimeout)
	if o.ReplicaAcks > 0 {
		c.events.tail = func(ctx context.Context, p redis.Pipeliner) redis.Cmder {
			return p.Do(ctx, "WAIT", o.ReplicaAcks, o.ReplicaTimeout.Milliseconds())
		}
	}
	c.work = newBatcher(rdb, batchMax, batchTimeout)
	return c, nil
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

// readShards is how many shards may hold work: those written to, and any
// more that a process with a larger `shards` wrote to.
func (c *conn) readShards() int { return max(c.shards, int(c.seen.Load())) }

// perShard is a bound split evenly over the shards, rounded up.
func (c *conn) perShard(n int64) int64 { return (n + int64(c.shards) - 1) / int64(c.shards) }

// closeWait bounds how long Close waits for go-redis to let go: with
// Redis or Sentinel down, a client's Close waits for a background dial
// probe (up to its 5s dial timeout) that holds the failover lock, and a
// pipeline can wait for that lock as well. A config reload runs Close, and
// Caddy's admin API gives a load 5s.
const closeWait = time.Second

// close ends the pipelines in flight (their callers spool or retry, as on
// any Redis error), closes both clients, which ends blocked reads, and
// stops the batchers. What has not finished within closeWait finishes in
// the background: nothing is left to write by then.
func (c *conn) close() error {
	c.events.shut()
	c.work.shut()
	done := make(chan error, 1)
	go func() {
		err := errors.Join(c.endReads(), c.rdb.Close())
		c.events.wait()
		c.work.wait()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(closeWait):
		return nil
	}
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
