package redisstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// The recursion guard remembers, per chain (X-Gitlab-Event-UUID), which
// hooks it triggered and through which event, as GitLab does for 30
// minutes after the chain's last registration: a hook already triggered in
// the chain by another event is not triggered again, a replay of the same
// event is not recursion, and a chain triggers at most a given number of
// hooks.
//
// Nearly every event starts its own chain (its ID is its chain), and
// nearly all of those chains never see a second event. Such a root chain
// is one field of a shared hash instead of a key of its own (about 35
// bytes of Redis per event instead of 215; BenchmarkChainChecks): the
// field is the chain's UUID in 16 bytes, the value the registration
// second (4 bytes) and the hook IDs, without the event ID, which is the
// chain. The hash is chosen by the chain's time (event IDs are UUIDv7s,
// stamped at capture; chainBucket wide) and by its last bits
// (chainSubBuckets per bucket), so one HGET finds a chain, and each hash
// stays within Redis's compact encoding (hash-max-listpack-entries: 512 by
// default) up to about 8,000 events/s per shard; at 500 events/s a hash
// holds about 30 records, quick to scan. Each hash expires on its own a window after its last write, and
// a record is forgotten once its own window has passed, whatever its
// hash's TTL. A record longer than the compact encoding's values
// (hash-max-listpack-value: 64 bytes, a dozen hooks or more) goes to the
// bucket's overflow hash and leaves a 5-byte stub, so that it does not
// turn a whole shared hash into the expensive encoding.
//
// A chain's first event caused by a webhook request (one that inherited
// the chain) moves the root record into the chain's own hash, hook ID ->
// event ID, kept a window after its last registration; the chain lives
// there from then on, and so do chains that are not version-7 UUIDs.
const (
	chainBucket     = 30 * time.Second
	chainSubBuckets = 512
)

// chainKey names a recursion-chain key of a queue shard: the events of a
// chain all go to one shard, chosen from the chain, so its keys share the
// shard's hash tag and every chain script runs in one slot. name is the
// chain for its own hash, or "r:<bucket>[:<sub-bucket>]" for the hashes
// of root chains.
func chainKey(namespace string, shard int, name string) string {
	return Keys{Namespace: namespace}.shard(shard) + "chain:" + name
}

// chainLua checks and registers an event's hooks in its recursion chain:
// a hook already triggered in the chain by another event (0), or a chain
// that reached its limit of hooks (2), is refused; a replay of the same
// event is not recursion. ownk is the chain's own hash; rootk and overk,
// for a version-7 chain (field, its 16 bytes, not empty), its root hash and
// the bucket's overflow hash. ids are the hook ids; it returns a verdict
// per hook. A root record is the 4-byte registration second, then the hook
// ids joined by ','; in the root hash, 4 bytes and '+' when the record is
// in the overflow hash.
const chainLua = `
local function chaincheck(ownk, rootk, overk, event, now, window, max, chain, field, ids)
  local out = {}
  -- root returns the chain's root record, if it is still in its window, and
  -- whether it is in the overflow hash.
  local function root()
    local v = redis.call('HGET', rootk, field)
    if not v then return nil end
    local over = string.sub(v, 5) == '+'
    if over then v = redis.call('HGET', overk, field) end
    if v and (struct.unpack('>I4', v) + 1) * 1000 + window > now then return v, over end
    redis.call('HDEL', rootk, field)
    if over then redis.call('HDEL', overk, field) end
    return nil
  end
  local own = field == '' or redis.call('EXISTS', ownk) == 1
  if not own and event == chain then
    -- the chain's own event, and the chain has no hash of its own: its root record
    local v, over = root()
    local hooks, seen, n = {}, {}, 0
    if v then
      for id in string.gmatch(string.sub(v, 5), '[^,]+') do
        n = n + 1
        hooks[n] = id
        seen[id] = true
      end
    end
    for i = 1, #ids do
      if seen[ids[i]] then
        out[#out + 1] = 1
      elseif n >= max then
        out[#out + 1] = 2
      else
        n = n + 1
        hooks[n] = ids[i]
        seen[ids[i]] = true
        out[#out + 1] = 1
      end
    end
    if n == 0 then return out end
    local at = struct.pack('>I4', math.floor(now / 1000))
    local rec = at .. table.concat(hooks, ',')
    if #rec <= 64 then -- hash-max-listpack-value: the root hash stays compact
      redis.call('HSET', rootk, field, rec)
      if over then redis.call('HDEL', overk, field) end
    else
      redis.call('HSET', rootk, field, at .. '+')
      redis.call('HSET', overk, field, rec)
      redis.call('PEXPIRE', overk, window)
    end
    redis.call('PEXPIRE', rootk, window)
    return out
  end
  if not own then
    -- the first event caused by a webhook request of the chain: the root
    -- record, if any, moves to the chain's own hash
    local v, over = root()
    if v then
      local args = {}
      for id in string.gmatch(string.sub(v, 5), '[^,]+') do
        args[#args + 1] = id
        args[#args + 1] = chain
      end
      if #args > 0 then redis.call('HSET', ownk, unpack(args)) end
      redis.call('HDEL', rootk, field)
      if over then redis.call('HDEL', overk, field) end
    end
  end
  for i = 1, #ids do
    local prev = redis.call('HGET', ownk, ids[i])
    if prev and prev ~= event then
      out[#out + 1] = 0
    elseif not prev and redis.call('HLEN', ownk) >= max then
      out[#out + 1] = 2
    else
      redis.call('HSET', ownk, ids[i], event)
      out[#out + 1] = 1
    end
  end
  redis.call('PEXPIRE', ownk, window)
  return out
end
`

// chainScript is chainLua on its own (CheckChains); the fan-out runs it
// within its own script (FanOut).
var chainScript = redis.NewScript(chainLua + `
-- KEYS: chain's own hash; for a version-7 chain also its root hash and the bucket's overflow hash
-- ARGV: event id, now ms, window ms, max hooks, chain, chain as 16 bytes ('' when not version 7), hook ids...
return chaincheck(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  ARGV[5], ARGV[6], {unpack(ARGV, 7)})
`)

// ChainCheck asks which hooks an event may trigger in its recursion chain.
type ChainCheck struct {
	// Chain is the event's X-Gitlab-Event-UUID; EventID is the event's own.
	Chain, EventID string
	// Shard is the queue shard of the chain's events, whose hash tag the
	// chain's keys share.
	Shard   int
	HookIDs []int64
}

// ChainVerdict says whether an event may trigger a hook in its chain.
type ChainVerdict int

// Chain verdicts (the chain script's return values).
const (
	ChainRecursive ChainVerdict = 0 // the chain already triggered the hook
	ChainAllowed   ChainVerdict = 1
	ChainTooLong   ChainVerdict = 2 // the chain triggered too many hooks
)

// CheckChains registers each event's hooks in its chain, in one round trip,
// and returns a verdict per hook. The fan-out does not call it: FanOut
// runs the same check within its own script. The script goes by hash; only a node
// that lost it (restarted, failed over) costs a second round trip, with
// the calls it refused sent in full.
func (s *Store) CheckChains(ctx context.Context, checks []ChainCheck, ttl time.Duration, maxHooks int) ([][]ChainVerdict, error) {
	return s.checkChainsAt(ctx, checks, ttl, maxHooks, time.Now())
}

// checkChainsAt is CheckChains at a given time.
func (s *Store) checkChainsAt(ctx context.Context, checks []ChainCheck, ttl time.Duration, maxHooks int, now time.Time) ([][]ChainVerdict, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(checks))
	keys := make([][]string, len(checks))
	args := make([][]any, len(checks))
	for i, c := range checks {
		keys[i], args[i] = s.chainCall(&c, now, ttl, maxHooks)
	}
	run := func(eval bool, which []int) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range which {
				cmds[i] = runScript(ctx, p, chainScript, eval, keys[i], args[i]...)
			}
			return nil
		})
		return err
	}
	all := make([]int, len(checks))
	for i := range all {
		all[i] = i
	}
	err := run(false, all)
	var missing []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		err = run(true, missing)
	}
	if err != nil {
		return nil, fmt.Errorf("checking recursion chains: %w", err)
	}
	out := make([][]ChainVerdict, len(cmds))
	for i, c := range cmds {
		vs, err := c.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("checking recursion chain: %w", err)
		}
		out[i] = make([]ChainVerdict, len(vs))
		for j, v := range vs {
			out[i][j] = ChainVerdict(v)
		}
	}
	return out, nil
}

// chainCall is the keys and arguments of one check's chain script.
func (s *Store) chainCall(c *ChainCheck, now time.Time, ttl time.Duration, maxHooks int) ([]string, []any) {
	own, root, over, field := s.chainTarget(c.Shard, c.Chain)
	keys := []string{own}
	if field != "" {
		keys = append(keys, root, over)
	}
	args := make([]any, 0, 6+len(c.HookIDs))
	args = append(args, c.EventID, now.UnixMilli(), ttl.Milliseconds(), maxHooks, c.Chain, field)
	for _, id := range c.HookIDs {
		args = append(args, id)
	}
	return keys, args
}

// chainTarget names a chain's keys in its shard: its own hash and, for a
// chain with a root record, the root hash and the bucket's overflow hash,
// and the chain's 16 bytes (its field in them). Only a version-7 chain in
// canonical form (as webhook.NewEvent writes event IDs and inherited
// chains) has a root record, so one chain never has two; any other has no
// field, and its root and overflow are its own hash (so that a script may
// name them anyway, in the same slot).
func (s *Store) chainTarget(shard int, chain string) (own, root, over, field string) {
	ns := s.keys.Namespace
	own = chainKey(ns, shard, chain)
	u, err := uuid.Parse(chain)
	if err != nil || u.Version() != 7 || u.String() != chain {
		return own, own, own, ""
	}
	ms := int64(binary.BigEndian.Uint64(u[0:8]) >> 16)
	bucket := "r:" + strconv.FormatInt(ms/chainBucket.Milliseconds(), 10)
	sub := int(binary.BigEndian.Uint16(u[14:16])) % chainSubBuckets
	return own, chainKey(ns, shard, bucket+":"+strconv.Itoa(sub)), chainKey(ns, shard, bucket), string(u[:])
}
