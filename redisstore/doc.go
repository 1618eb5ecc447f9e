// Package redisstore is everything caddy-webhooks keeps in Redis: the events
// stream the capture handler writes, the deliveries stream the workers read,
// their consumer groups and crash recovery. It has no Caddy in it.
//
// Keys: see Keys. The queues are spread over shards, each a hash tag
// ({q<i>.<n>}), so Redis Cluster keeps each shard's streams, payloads and the
// keys its scripts update in one slot:
//
//	<ns>:{q<i>.<n>}:events   stream of captured events (metadata); group "fanout".
//	<ns>:{q<i>.<n>}:p:<id>   an event's payload, stored once; <ns>:{q<i>.<n>}:refs
//	                     counts its holders, and at zero it goes.
//	<ns>:{q<i>.<n>}:ready    stream, one entry per (event, hook) delivery, with a
//	                     reference to the payload; group "deliver". Entries
//	                     are deleted once settled, so the stream holds only
//	                     unfinished work and is never trimmed.
//
// Work is at-least-once: an entry read by a consumer stays in the group's
// pending list until it is acknowledged; a consumer that died leaves it
// there, and XAUTOCLAIM hands it to another after the lease.
package redisstore
