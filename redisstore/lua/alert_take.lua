-- alert_take takes what was counted for one alert (a hook's dead letters)
-- when its gate is open: at most one alert per gate interval, across
-- processes. Counted entries stay until a take gets them.
-- KEYS: counts hash, gate, pending set
-- ARGV: interval ms, member of the pending set
-- returns: the counts as field, value pairs; {} when the gate is closed or nothing was counted
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[2])
  return {}
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {} end
local counts = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[2])
return counts
