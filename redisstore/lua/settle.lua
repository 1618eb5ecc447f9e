-- settle records the queue side of one delivery attempt atomically, in
-- the delivery's shard: it acknowledges the entry, appends the attempt to
-- its hook's log, and schedules the retry, dead-letters the delivery, or
-- (success, or nothing more to do) releases its payload. The payload's
-- reference passes from the entry to the retry or the dead letter (or
-- goes, when the same retry waits already); the log entry takes its own,
-- except from a delivery done, which hands its reference to its entry.
-- The hook's health is record_health's, in the hook's slot.
-- KEYS: ready, schedule, dead, dead bytes, refs, log, logs
-- ARGV: name, value pairs (named.lua):
--   group, entry: the ready entry; now: ms; next: done | retry | dead
--   ev, plen, prefix: the event whose shared payload the delivery holds ('' if none), its length,
--     the payload key prefix
--   due, member: the retry's due ms and schedule member (next = retry)
--   doc, reason, max_dead, max_dead_bytes: the dead letter, why, and the stream's bounds (next = dead)
--   the log entry, when there is one: hook, shard, log_min (ms), log_ms, log_max (entries), status,
--     log_entry, log_ev (the event whose payload it refers to, or '')
-- returns: {already settled (1|0), dead letters trimmed for count, for bytes, log entry id ('')}
--- @include "named"
--- @include "refs"
--- @include "dead"
--- @include "log"
local a = named(1)
if redis.call('XACK', KEYS[1], a.group, a.entry) == 0 then return {1, 0, 0, ''} end
redis.call('XDEL', KEYS[1], a.entry)
local logid = ''
-- A delivery done whose log entry refers to its payload hands its
-- reference to the entry: two count updates fewer.
local handed = a.log_entry ~= nil and a.next == 'done' and a.log_ev ~= '' and a.log_ev == a.ev
if a.log_entry ~= nil then
  logid = logappend(KEYS[6], KEYS[7], KEYS[5], a.prefix, a.hook, tonumber(a.shard), a.log_min, a.log_ms, a.log_max,
    a.status, a.log_entry, a.log_ev, handed)
end
local c, b = 0, 0
if a.next == 'retry' then
  if redis.call('ZADD', KEYS[2], a.due, a.member) == 0 then
    -- the same delivery (of an event added twice) waits already: one
    -- member holds one reference
    addref(KEYS[5], a.prefix, a.ev, -1)
  end
elseif a.next == 'dead' then
  c, b = dead(KEYS[3], KEYS[4], KEYS[5], a.prefix, a.doc, a.reason, a.now, a.ev, tonumber(a.plen),
    tonumber(a.max_dead), tonumber(a.max_dead_bytes))
elseif not handed then
  addref(KEYS[5], a.prefix, a.ev, -1)
end
return {0, c, b, logid}
