-- put_integration writes, or deletes, an integration if it is still as
-- read (compare and set).
-- KEYS: integrations, hooks version
-- ARGV: field, the value read ('' when absent), the new value ('' to delete)
-- returns: 1 when written, 0 when the value changed since
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  if cur == '' then return 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('INCR', KEYS[2])
return 1
