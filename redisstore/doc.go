// Package redisstore is everything caddy-webhooks keeps in Redis. It has
// no Caddy in it, and nothing outside it touches the go-redis client
// (tests and the benchmark tool aside): callers take the capability store
// they need from a Store.
//
// # Where things are
//
// One Store is one namespace (every key starts "<ns>:"), over one
// connection (conn.go: options, TLS, the two clients, and the batcher,
// batch.go, that coalesces concurrent calls into pipelines). Each
// capability is a store of its own, in files named for it; its keys are
// named in keys.go, and its Lua scripts are in lua/ (shared functions in
// lua/includes/), run through one runner (scripts.go):
//
//	store         files                              keys                              scripts (lua/)
//	Queue         queue.go deliveries.go fanout.go   {q<i>.<n>}: events, p:<event>,     add_event, fan_out (chain, refs),
//	              settle.go chain.go entries.go      refs, ready, sched, chain:…        add_delivery, drop_delivery,
//	                                                 {d0}:shards                        defer_delivery, move_due,
//	                                                                                    settle (dead, log, refs), note_shards
//	DeadLetters   deadletters.go                     {q<i>.<n>}: dead, dead:bytes        redrive
//	Health        health.go                          {hs<j>.<n>}: hook:<id>:health,     admit, count_rate, record_health
//	                                                 disabled, rate:<top>:<minute>
//	Log           log.go logcodec.go                 {q<i>.<n>}: hook:<id>:log, logs     append_log, log_statuses, trim_log
//	Control       control.go                         {d0}: paused, throttle:…           -
//	Samples       samples.go                         {d0}: project:<p>:last_<trigger>   -
//	Hooks         hooks.go hookcodec.go              {h0}: hooks, hooks:version,        create_hook, update_hook,
//	              namespaces.go                      hooks:seq, hooks:<kind>:<path>,    delete_hook, resolve_namespace
//	                                                 ns:seq, ns:by_path, ns:by_id,
//	                                                 ns:scope:<scope>
//	Integrations  integrations.go                    {h0}: integrations                 put_integration
//	Idempotency   idempotency.go                     {i0}: idem:<sha256>                release_idempotency_key
//	Ordered       ordered.go                         {hs<j>.<n>}: ordready,             ord_add, ord_take, ord_settle
//	                                                 hook:<id>:ord, ordd, ordlease,     (health), ord_bound, drop_ordin,
//	                                                 ordst; {q<i>.<n>}: ordin;          add_dead
//	                                                 {d0}: ordmarks
//	Replays       replays.go                         {d0}: replays, replays:seq,        replay_lock
//	                                                 replays:lock, replay:<id>[:items]
//	Alerts        alerts.go                          {d0}: alerts:dead[:<hook>],        alert_take
//	                                                 alerts:gate:<name>
//	Legacy        legacy.go                          {e0}, {d0} of the layout before    -
//	                                                 shards (drained into the shards)
//
// # The queues
//
// The queues are spread over shards (shards.go), each a hash tag
// {q<i>.<n>} chosen so that any number of shards spreads evenly over a
// Redis Cluster's masters. An event's shard follows its chain
// (X-Gitlab-Event-UUID), so everything an event and its deliveries touch,
// the recursion guard included, is in one slot, and every script stays
// inside one slot:
//
//	events      stream of captured events (metadata); group "fanout".
//	p:<event>   an event's payload, stored once; refs counts its holders
//	            (the event until fanned out, deliveries, scheduled retries,
//	            dead letters, log entries), and at zero it goes.
//	ready       stream, one entry per (event, hook) delivery; group
//	            "deliver". Entries are deleted once settled, so the stream
//	            holds only unfinished work and is never trimmed.
//	sched       retries and deferred deliveries, by due time.
//	dead        deliveries given up on, within count and byte bounds.
//	hook:<id>:log  that shard's part of a hook's log; entry numbers name
//	            their shard.
//
// Hook health, the disabled index and rate windows live on 16 fixed hook
// slots {hs<j>.<n>}, so changing the number of shards never moves them.
//
// Work is at-least-once: an entry read by a consumer stays in the group's
// pending list until it is acknowledged; a consumer that died leaves it
// there, and XAUTOCLAIM hands it to another after the lease.
//
// The records kept here (hooks, namespaces, integrations, log entries)
// are package webhook's; this package maps them to hashes and streams.
package redisstore
