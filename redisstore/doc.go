// Package redisstore is everything caddy-webhooks keeps in Redis: the events
// stream the capture handler writes, the deliveries stream the workers read,
// their consumer groups and crash recovery. It has no Caddy in it.
//
// Keys (every key carries a hash tag so Redis Cluster keeps each stream and
// the keys it is updated with in one slot; more shards can be added later by
// numbering the tags):
//
//	<ns>:{e0}:events   stream, one entry per captured event; group "fanout".
//	                   Entries are deleted once fanned out.
//	<ns>:{d0}:ready    stream, one entry per (event, hook) delivery; group
//	                   "deliver". Entries are deleted once settled, so the
//	                   stream holds only unfinished work and is never trimmed.
//
// Work is at-least-once: an entry read by a consumer stays in the group's
// pending list until it is acknowledged; a consumer that died leaves it
// there, and XAUTOCLAIM hands it to another after the lease.
package redisstore
