-- defer_delivery moves a delivery off the ready stream into the schedule,
-- for a later time, without counting an attempt. Its payload's reference
-- passes to the schedule's member, unless the same delivery (of an event
-- added twice) is there already: one member holds one reference.
-- KEYS: ready, schedule, refs
-- ARGV: group, entry id, due ms, member, event id ('' if not shared), payload prefix
-- returns: 1, or 0 when another consumer settled the entry first
--- @include "refs"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) == 0 then addref(KEYS[3], ARGV[6], ARGV[5], -1) end
return 1
