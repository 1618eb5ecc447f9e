-- drop_delivery settles a delivery that cannot be delivered at all,
-- releasing its payload.
-- KEYS: ready, refs
-- ARGV: group, entry id, event id ('' if not shared), payload prefix
-- returns: 1, or 0 when another consumer settled the entry first
--- @include "refs"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
addref(KEYS[2], ARGV[4], ARGV[3], -1)
return 1
