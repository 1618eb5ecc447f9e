-- delete_hook removes a hook and its place in its owner's set.
-- KEYS: hooks, the owner's hook ids, hooks version
-- ARGV: hook id
-- returns: 1, or 0 when it was gone
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
