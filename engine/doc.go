// Package engine is the runtime that turns captured events into
// GitLab-compatible deliveries. Its Runtime holds the configuration and the
// hooks in effect (configured and API-managed), starts and stops the loops,
// and wires the rooms that do the work, one package each:
//
//   - fanout: events into deliveries (hook matching, recursion guard);
//   - delivery: sending, per-hook slots and parking, settling, hook health,
//     tests and resends;
//   - recovery: the schedule mover, the janitor, poison, redrive;
//   - ordered: ordered hooks' queues, sent one head at a time in capture
//     order across processes and shards;
//   - replay: what failed (or every attempt, or the dead letters) of a
//     time range, sent again behind live deliveries;
//   - alerts: the operator's signed alerts (hooks disabled and back, dead
//     letters rolled up, a backlog, Redis down);
//   - hooklog: each hook's log, which delivery records attempts in;
//   - tracing: the spans of an event in the trace of the request that
//     caused it (enqueue, fan-out, each attempt), in Caddy's tracer
//     provider;
//   - metrics: the Prometheus collectors they share.
//
// The records they pass around are in package webhook. Redis is reached
// through redisstore's capability stores: the runtime hands each room the
// ones it uses (fanout.Store, delivery.Store, recovery.Store), and no room
// sees the Redis client. The engine knows nothing of Caddy: the module package
// is the thin glue that feeds it.
package engine
