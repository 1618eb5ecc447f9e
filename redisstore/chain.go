package redisstore

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// The recursion guard (lua/includes/chain.lua, run by the fan-out)
// remembers, per chain (X-Gitlab-Event-UUID), which
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

// ChainVerdict says whether an event may trigger a hook in its chain.
type ChainVerdict int

// Chain verdicts (lua/includes/chain.lua's chaincheck's values).
const (
	ChainRecursive ChainVerdict = 0 // the chain already triggered the hook
	ChainAllowed   ChainVerdict = 1
	ChainTooLong   ChainVerdict = 2 // the chain triggered too many hooks
)

// chainTarget names a chain's keys in its shard: its own hash and, for a
// chain with a root record, the root hash and the bucket's overflow hash,
// and the chain's 16 bytes (its field in them). Only a version-7 chain in
// canonical form (as webhook.NewEvent writes event IDs and inherited
// chains) has a root record, so one chain never has two; any other has no
// field, and its root and overflow are its own hash (so that a script may
// name them anyway, in the same slot).
func (q *Queue) chainTarget(shard int, chain string) (own, root, over, field string) {
	ns := q.keys.Namespace
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
