-- update_hook replaces a stored hook if it is still as read (compare and
-- set).
-- KEYS: hooks, hooks version
-- ARGV: hook id, stored hook as read, new stored hook
-- returns: 1 written, 0 changed since, -1 gone
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
