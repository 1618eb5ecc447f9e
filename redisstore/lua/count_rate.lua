-- count_rate counts a call in a namespace's minute.
-- KEYS: rate window
-- ARGV: window ttl ms
-- returns: the calls counted in the window
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
