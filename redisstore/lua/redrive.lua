-- redrive moves a dead letter back to the ready stream as a first
-- attempt, and takes its size off the dead-bytes counter. Its payload's
-- reference passes to the ready entry.
-- KEYS: dead, ready, dead bytes
-- ARGV: dead entry id, delivery
-- returns: 1, or 0 when the dead letter is gone
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[1])
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == 'n' then redis.call('DECRBY', KEYS[3], tonumber(f[i + 1]) or 0) end
end
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
return 1
