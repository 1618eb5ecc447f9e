-- create_hook stores a new hook in its project's or group's set, unless
-- that holds its limit of hooks already.
-- KEYS: hooks, the owner's hook ids, hooks version
-- ARGV: hook id, stored hook, limit (0: none)
-- returns: 1, or 0 at the limit
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('SCARD', KEYS[2]) >= limit then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
