-- settle_health is settle and record_health in one script, for a Redis
-- that is not a Cluster (the health keys are in another slot): it records
-- the queue side of one delivery attempt atomically, in
-- the delivery's shard: it acknowledges the entry, appends the attempt to
-- its hook's log, and schedules the retry, dead-letters the delivery, or
-- (success, or nothing more to do) releases its payload. The payload's
-- reference passes from the entry to the retry or the dead letter (or
-- goes, when the same retry waits already); the log entry takes its own,
-- except from a delivery done, which hands its reference to its entry.
-- It then records the hook's health as record_health does.
-- KEYS: ready, schedule, dead, dead bytes, refs, log, log tails, health, disabled hooks
-- ARGV: name, value pairs (named.lua):
--   group, entry: the ready entry; now: ms; next: done | retry | dead
--   ev, plen, prefix: the event whose shared payload the delivery holds ('' if none), its length,
--     the payload key prefix
--   due, member: the retry's due ms and schedule member (next = retry)
--   doc, reason, max_dead, max_dead_bytes: the dead letter, why, and the stream's bounds (next = dead)
--   the log entry, when there is one: hook, shard, log_ms, log_max (entries), status,
--     log_entry, log_ev (the event whose payload it refers to, or '')
--   the health: result, class, threshold, base, max, mode, after, health_status, health_hook (record_health's)
-- returns: {already settled (1|0), dead letters trimmed for count, for bytes, log entry id (''),
--          the health (record_health's reply)}
--- @include "named"
--- @include "settle"
--- @include "health"
local a = named(1)
local r = settle(a, KEYS)
r[5] = {recordhealth(KEYS[8], KEYS[9], tonumber(a.now), a.result == 'ok', a.class, a.health_status, a.health_hook,
  healthpolicy(a))}
return r
