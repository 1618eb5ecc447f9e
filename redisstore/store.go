package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
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

// Store reads and writes the streams of one namespace.
type Store struct {
	keys   Keys
	shards int
	// seen is the most shards any process of the namespace has written to
	// (NoteShards): after `shards` is lowered, the shards beyond it are
	// still read until they are empty.
	seen atomic.Int32
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
	if o.Shards > MaxShards || o.Shards < 0 {
		return nil, fmt.Errorf("shards must be between 1 and %d, got %d", MaxShards, o.Shards)
	}
	s := &Store{keys: Keys{Namespace: o.Namespace}, shards: max(o.Shards, 1), rdb: rdb, blk: blk,
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

// Shards is how many queue shards the store writes to.
func (s *Store) Shards() int { return s.shards }

// readShards is how many shards may hold work: those written to, and any
// more that a process with a larger `shards` wrote to.
func (s *Store) readShards() int { return max(s.shards, int(s.seen.Load())) }

// ReadShards is readShards for the engine: shards from Shards() up to it
// are drained by the janitor.
func (s *Store) ReadShards() int { return s.readShards() }

// noteShardsScript raises the recorded shard count to ARGV[1].
var noteShardsScript = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if v < tonumber(ARGV[1]) then
  v = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], v)
end
return v
`)

// NoteShards records this store's shard count in Redis and learns the
// largest any process of the namespace recorded.
func (s *Store) NoteShards(ctx context.Context) error {
	v, err := noteShardsScript.Run(ctx, s.rdb, []string{s.keys.shardCount()}, s.shards).Int64()
	if err != nil {
		return fmt.Errorf("recording the shard count: %w", err)
	}
	s.seen.Store(int32(min(v, MaxShards)))
	return nil
}

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

// EnsureGroups creates the consumer groups (and their streams) of every
// shard if missing.
func (s *Store) EnsureGroups(ctx context.Context) error {
	for i := range s.shards {
		for _, g := range [][2]string{{s.keys.Events(i), GroupFanout}, {s.keys.Ready(i), GroupDeliver}} {
			if err := s.createGroup(ctx, g[0], g[1]); err != nil {
				return err
			}
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

// addEventScript stores an event's payload and its entry atomically: the
// entry holds one reference to the payload until it is fanned out. It may
// then take an event for a fan-out consumer (AddEventFor): the oldest not
// yet handed out, normally the one just added.
var addEventScript = redis.NewScript(`
-- KEYS: events, refs, payload; ARGV: body, event id, fan-out group, consumer to take an event for (''), entry fields...
-- returns: {entry id, entries taken (or false)}
redis.call('SET', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
local taken = false
if ARGV[4] ~= '' then
  -- pcall: without the group (not created yet, or lost with a Redis
  -- restart) the event is simply not taken
  local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[3], ARGV[4], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if type(r) == 'table' and r[1] then taken = r[1][2] end
end
return {id, taken}
`)

// AddEvent stores an event in its shard: the payload once, and an entry
// with what fan-out needs to choose hooks. With ReplicaAcks set, it also
// waits (WAIT, on the same connection) until that many replicas have the
// write, and fails otherwise: an acknowledged event then survives a
// failover. The caller may retry a failed add; a retried event keeps its
// ID, so its deliveries keep their Idempotency-Keys.
func (s *Store) AddEvent(ctx context.Context, e *webhook.Event) (string, error) {
	id, _, err := s.AddEventFor(ctx, e, "")
	return id, err
}

// AddEventFor is AddEvent that also takes an event for the fan-out
// consumer named (none if ""), in the same script: the oldest event not
// yet handed out, normally e itself, whose body it then carries. An idle
// process fans it out at once, without reading it. Taken is nil when
// there was none, and also returned, pending for consumer, with an error
// of the replicas' acknowledgement.
func (s *Store) AddEventFor(ctx context.Context, e *webhook.Event, consumer string) (id string, taken *EventMsg, err error) {
	chain := e.Chain
	if chain == "" {
		chain = e.ID
	}
	i := ShardOf(chain, s.shards)
	keys := []string{s.keys.Events(i), s.keys.Refs(i), s.keys.Payload(i, e.ID)}
	args := append([]any{e.Body, e.ID, GroupFanout, consumer}, eventValues(e)...)
	var add *redis.Cmd
	op, err := s.events.do(ctx, func(p redis.Pipeliner, eval bool) {
		add = runScript(ctx, p, addEventScript, eval, keys, args...)
	})
	var res []any
	if err == nil {
		res, err = add.Slice()
	}
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return "", nil, fmt.Errorf("adding event %s: %w", e.ID, err)
	}
	id, _ = res[0].(string)
	if list, _ := res[1].([]any); len(list) > 0 {
		m, err := eventEntry(i, list[0])
		if err != nil {
			return "", nil, fmt.Errorf("adding event %s: %w", e.ID, err)
		}
		if m.Err == nil && m.Event.ID == e.ID {
			m.Event.Body = e.Body
		}
		taken = &m
	}
	if s.replicaAcks > 0 {
		wait := op.tail.(*redis.Cmd)
		if n, _ := wait.Int64(); n < int64(s.replicaAcks) {
			return "", taken, fmt.Errorf("adding event %s: %d of %d replicas acknowledged it within %s", e.ID, n, s.replicaAcks, s.replicaTimeout)
		}
	}
	return id, taken, nil
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

// ReadEvents reads events of a shard for consumer. cursor ">" reads new
// entries; "0" (or an entry ID) re-reads the consumer's own pending entries
// after it.
func (s *Store) ReadEvents(ctx context.Context, shard int, consumer, cursor string, count int64, block time.Duration) ([]EventMsg, error) {
	msgs, err := s.read(ctx, s.keys.Events(shard), GroupFanout, consumer, cursor, count, block)
	return decodeAll(shard, msgs, decodeEvent), err
}

// ReadDeliveries reads deliveries of a shard for consumer, with their
// payloads; cursor as ReadEvents.
func (s *Store) ReadDeliveries(ctx context.Context, shard int, consumer, cursor string, count int64, block time.Duration) ([]DeliveryMsg, error) {
	msgs, err := s.read(ctx, s.keys.Ready(shard), GroupDeliver, consumer, cursor, count, block)
	if err != nil {
		return nil, err
	}
	out := decodeAll(shard, msgs, decodeDelivery)
	return out, s.fillPayloads(ctx, shard, out)
}

// ClaimEvents takes over events of a shard left pending by any consumer
// for at least minIdle, from start ("0-0" for the beginning). It returns
// the next start.
func (s *Store) ClaimEvents(ctx context.Context, shard int, consumer string, minIdle time.Duration, start string, count int64) ([]EventMsg, string, error) {
	msgs, next, err := s.claim(ctx, s.keys.Events(shard), GroupFanout, consumer, minIdle, start, count)
	return decodeAll(shard, msgs, decodeEvent), next, err
}

// ClaimDeliveries is ClaimEvents for the deliveries stream.
func (s *Store) ClaimDeliveries(ctx context.Context, shard int, consumer string, minIdle time.Duration, start string, count int64) ([]DeliveryMsg, string, error) {
	msgs, next, err := s.claim(ctx, s.keys.Ready(shard), GroupDeliver, consumer, minIdle, start, count)
	if err != nil {
		return nil, next, err
	}
	out := decodeAll(shard, msgs, decodeDelivery)
	return out, next, s.fillPayloads(ctx, shard, out)
}

// fillPayloads reads the shared payloads of msgs (one MGET: a shard is one
// slot), each once however many deliveries share it. A payload that is
// missing makes its delivery undecodable.
func (s *Store) fillPayloads(ctx context.Context, shard int, msgs []DeliveryMsg) error {
	var keys []string
	var at map[string]int
	for i := range msgs {
		d := &msgs[i].Delivery
		if msgs[i].Err != nil || !d.Shared || d.Body != nil {
			continue
		}
		if at == nil {
			at = make(map[string]int, len(msgs))
		}
		if _, ok := at[d.EventID]; !ok {
			at[d.EventID] = len(keys)
			keys = append(keys, s.keys.Payload(shard, d.EventID))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("reading %d payloads of shard %d: %w", len(keys), shard, err)
	}
	for i := range msgs {
		d := &msgs[i].Delivery
		if msgs[i].Err != nil || !d.Shared || d.Body != nil {
			continue
		}
		b, ok := vals[at[d.EventID]].(string)
		if !ok {
			msgs[i].Err = fmt.Errorf("entry %s: the payload of event %s is missing", msgs[i].StreamID, d.EventID)
			continue
		}
		d.Body = json.RawMessage(b)
	}
	return nil
}

// Payloads reads the payloads of events of one shard, nil where missing.
func (s *Store) Payloads(ctx context.Context, shard int, eventIDs []string) ([][]byte, error) {
	if len(eventIDs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(eventIDs))
	for i, id := range eventIDs {
		keys[i] = s.keys.Payload(shard, id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading %d payloads of shard %d: %w", len(keys), shard, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if b, ok := v.(string); ok {
			out[i] = []byte(b)
		}
	}
	return out, nil
}

// Fanned is one event's fan-out: the deliveries it makes.
type Fanned struct {
	Shard    int
	StreamID string
	EventID  string
	// Chain is the event's X-Gitlab-Event-UUID. The first Checked
	// deliveries (those of hooks) are checked and registered in its
	// recursion chain; the rest (chat messages) are not.
	Chain   string
	Checked int
	// Deliveries are queued, but for the checked ones the chain refuses.
	Deliveries []webhook.Delivery
	// Verdicts and Already are FanOut's answer: the chain's verdict on
	// each checked delivery (only the allowed ones were queued), and
	// whether another consumer had fanned the event out already (then
	// nothing was queued, and Verdicts is empty).
	Verdicts []ChainVerdict
	Already  bool
	// Taken are the deliveries FanOut took for the HandOff's consumer,
	// payloads filled in: they are pending for it, read by no one else.
	Taken []DeliveryMsg
}

// HandOff asks FanOut to take up to Max of the deliveries it queues for
// Consumer (of GroupDeliver) at once, with their payload, in the same
// script: a process whose workers are idle then needs no read of its own
// (a round trip, and another for the payloads) to start them.
type HandOff struct {
	Consumer string
	Max      int
}

// refsLua adjusts a payload's reference count; at zero the payload goes.
const refsLua = `
local function addref(refs, prefix, ev, delta)
  if ev == '' or delta == 0 then return end
  if redis.call('HINCRBY', refs, ev, delta) <= 0 then
    redis.call('HDEL', refs, ev)
    redis.call('DEL', prefix .. ev)
  end
end
`

// fanOutScript fans an event out in one step: it checks and registers its
// hooks in its recursion chain (chainLua), queues the deliveries the chain
// allows, and settles the event; the payload's reference passes from the
// event to the deliveries that share it. An event settled already (fanned
// out by another consumer) queues nothing and leaves its chain alone. It
// may then take deliveries for a consumer (HandOff) and return them with
// their payloads. Those are the oldest not yet handed out: normally the
// ones just queued, but any others are as good.
var fanOutScript = redis.NewScript(refsLua + chainLua + `
-- KEYS: events, ready, refs, chain's own hash, chain's root hash, bucket's overflow hash
--       (the last two: the own hash again for a chain without a root record)
-- ARGV: group, entry id, event id, payload prefix, now ms, chain window ms, chain max hooks, chain,
--       chain as 16 bytes (''), deliveries to take at most, delivery group, consumer to take them for,
--       n checked, the n hook ids, then per delivery: shared ('1'|''), document;
--       the first n deliveries are those of the hook ids
-- returns: {1} when settled already, else {0, {verdict of each of the n hooks}, entries taken,
--          {event id, payload, ...} of the shared payloads of the entries taken}
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {1} end
redis.call('XDEL', KEYS[1], ARGV[2])
local n = tonumber(ARGV[13])
local verdicts = {}
if n > 0 then
  verdicts = chaincheck(KEYS[4], KEYS[5], KEYS[6], ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
    ARGV[8], ARGV[9], {unpack(ARGV, 14, 13 + n)})
end
local shared, queued, k = 0, 0, 0
for i = 14 + n, #ARGV - 1, 2 do
  k = k + 1
  if k > n or verdicts[k] == 1 then
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[i + 1])
    queued = queued + 1
    if ARGV[i] == '1' then shared = shared + 1 end
  end
end
addref(KEYS[3], ARGV[4], ARGV[3], shared - 1)
local taken, payloads = false, {}
local take = math.min(tonumber(ARGV[10]), queued)
if take > 0 then
  -- pcall: without the group, nothing is taken (the deliveries are queued)
  local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[11], ARGV[12], 'COUNT', take, 'STREAMS', KEYS[2], '>')
  if type(r) == 'table' and r[1] then
    taken = r[1][2]
    local seen = {}
    for _, e in ipairs(taken) do
      local f = e[2]
      -- a delivery of a shared payload: {"ev":"<event id>",...,"p":1} (EncodeDelivery)
      if f and f[1] == 'd' and string.sub(f[2], -7) == ',"p":1}' then
        local ev = string.match(f[2], '^{"ev":"([^"\\]*)"')
        if ev and not seen[ev] then
          seen[ev] = true
          local p = redis.call('GET', ARGV[4] .. ev)
          if p then
            payloads[#payloads + 1] = ev
            payloads[#payloads + 1] = p
          end
        end
      end
    end
  end
end
return {0, verdicts, taken, payloads}
`)

// FanOut fans each event out (fanOutScript), atomically per event: an
// event, its chain and its deliveries share a shard. It takes one round
// trip, and sets each event's Verdicts and Already, and Taken when ho asks
// for deliveries.
func (s *Store) FanOut(ctx context.Context, evs []Fanned, window time.Duration, maxHooks int, ho HandOff) error {
	if len(evs) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	room := ho.Max
	takes := make([]int, len(evs))
	for i := range evs {
		takes[i] = min(room, len(evs[i].Deliveries))
		room -= takes[i]
	}
	cmds, err := s.scripts(ctx, len(evs), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		f := &evs[i]
		own, root, over, field := s.chainTarget(f.Shard, f.Chain)
		args := make([]any, 0, 13+f.Checked+2*len(f.Deliveries))
		args = append(args, GroupFanout, f.StreamID, f.EventID, s.keys.PayloadPrefix(f.Shard), now,
			window.Milliseconds(), maxHooks, f.Chain, field, takes[i], GroupDeliver, ho.Consumer, f.Checked)
		for j := range f.Checked {
			args = append(args, f.Deliveries[j].HookID)
		}
		for j := range f.Deliveries {
			shared := ""
			if f.Deliveries[j].Shared {
				shared = "1"
			}
			args = append(args, shared, EncodeDelivery(&f.Deliveries[j]))
		}
		keys := []string{s.keys.Events(f.Shard), s.keys.Ready(f.Shard), s.keys.Refs(f.Shard), own, root, over}
		return runScript(ctx, p, fanOutScript, eval, keys, args...)
	})
	if err != nil {
		return fmt.Errorf("queueing the deliveries of %d events: %w", len(evs), err)
	}
	for i, c := range cmds {
		if err := evs[i].read(c); err != nil {
			return fmt.Errorf("queueing the deliveries of event %s: %w", evs[i].EventID, err)
		}
	}
	return s.fillTaken(ctx, evs)
}

// read takes fanOutScript's reply.
func (f *Fanned) read(c *redis.Cmd) error {
	res, err := c.Slice()
	if err != nil {
		return err
	}
	if len(res) == 1 {
		f.Already = true
		return nil
	}
	if len(res) != 4 {
		return fmt.Errorf("unexpected reply %v", res)
	}
	vs, _ := res[1].([]any)
	f.Verdicts = make([]ChainVerdict, len(vs))
	for j, v := range vs {
		n, _ := v.(int64)
		f.Verdicts[j] = ChainVerdict(n)
	}
	if f.Taken, err = deliveryEntries(f.Shard, res[2]); err != nil {
		return err
	}
	if len(f.Taken) == 0 {
		return nil
	}
	ps, _ := res[3].([]any)
	payloads := make(map[string][]byte, len(ps)/2)
	for j := 0; j+1 < len(ps); j += 2 {
		ev, _ := ps[j].(string)
		p, _ := ps[j+1].(string)
		payloads[ev] = []byte(p)
	}
	for j := range f.Taken {
		if d := &f.Taken[j].Delivery; f.Taken[j].Err == nil && d.Shared {
			if p, ok := payloads[d.EventID]; ok {
				d.Body = json.RawMessage(p)
			}
		}
	}
	return nil
}

// fillTaken reads the payloads the fan-out script did not find for the
// deliveries it took (an event ID it would have to unescape).
func (s *Store) fillTaken(ctx context.Context, evs []Fanned) error {
	for i := range evs {
		for j := range evs[i].Taken {
			if m := &evs[i].Taken[j]; m.Err == nil && m.Delivery.Shared && m.Delivery.Body == nil {
				if err := s.fillPayloads(ctx, evs[i].Shard, evs[i].Taken); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// addDeliveryScript queues a delivery directly (tests, tools, and work
// moved from the layout before shards); one of the shared payload takes a
// reference to it, storing it if needed.
var addDeliveryScript = redis.NewScript(refsLua + `
-- KEYS: ready, refs, payload; ARGV: delivery, event id ('' if not shared), body
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
`)

// AddDeliveries queues deliveries without an event, each in the shard of
// its chain.
func (s *Store) AddDeliveries(ctx context.Context, ds []webhook.Delivery) error {
	_, err := s.scripts(ctx, len(ds), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		d := &ds[i]
		sh := ShardOf(d.Chain, s.shards)
		ev, body := "", ""
		if d.Shared {
			ev, body = d.EventID, string(d.Body)
		}
		return runScript(ctx, p, addDeliveryScript, eval, []string{s.keys.Ready(sh), s.keys.Refs(sh), s.keys.Payload(sh, d.EventID)},
			EncodeDelivery(d), ev, body)
	})
	if err != nil {
		return fmt.Errorf("queueing %d deliveries: %w", len(ds), err)
	}
	return nil
}

// dropScript settles a delivery that cannot be delivered at all, releasing
// its payload.
var dropScript = redis.NewScript(refsLua + `
-- KEYS: ready, refs; ARGV: group, entry id, event id ('' if not shared), payload prefix
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
addref(KEYS[2], ARGV[4], ARGV[3], -1)
return 1
`)

// SettleDeliveries acknowledges and deletes deliveries that will not be
// sent (undecodable, or their hook is gone).
func (s *Store) SettleDeliveries(ctx context.Context, msgs ...*DeliveryMsg) error {
	_, err := s.scripts(ctx, len(msgs), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		m := msgs[i]
		ev := ""
		if m.Err == nil && m.Delivery.Shared {
			ev = m.Delivery.EventID
		}
		return runScript(ctx, p, dropScript, eval, []string{s.keys.Ready(m.Shard), s.keys.Refs(m.Shard)},
			GroupDeliver, m.StreamID, ev, s.keys.PayloadPrefix(m.Shard))
	})
	if err != nil {
		return fmt.Errorf("settling %d deliveries: %w", len(msgs), err)
	}
	return nil
}

// scripts runs n script calls in one pipeline, by hash; the calls Redis
// had no script for (restarted, failed over) go again in full. It returns
// the calls' results.
func (s *Store) scripts(ctx context.Context, n int, queue func(p redis.Pipeliner, eval bool, i int) *redis.Cmd) ([]*redis.Cmd, error) {
	if n == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, n)
	run := func(eval bool, which []int) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range which {
				cmds[i] = queue(p, eval, i)
			}
			return nil
		})
		return err
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	err := run(false, all)
	var missing []int
	for i, c := range cmds {
		if c != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		err = run(true, missing)
	}
	if err != nil {
		return cmds, err
	}
	for _, c := range cmds {
		if c != nil && c.Err() != nil {
			return cmds, c.Err()
		}
	}
	return cmds, nil
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

func decodeAll[T any](shard int, msgs []redis.XMessage, decode func(int, redis.XMessage) T) []T {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]T, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, decode(shard, m))
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
