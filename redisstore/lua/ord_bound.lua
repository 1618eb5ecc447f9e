-- ord_bound reads the earliest capture time of the events of one shard
-- that are not fanned out yet and of the ordered deliveries waiting in its
-- inbox: nothing captured before it can still join an ordered hook's
-- queue from this shard. More than max waiting entries are not read.
-- KEYS: events, ordered inbox
-- ARGV: max
-- returns: the time in ms, -1 when nothing waits, -2 when more than max do
local max = tonumber(ARGV[1])
local earliest = -1
for _, key in ipairs(KEYS) do
  local n = redis.call('XLEN', key)
  if n > max then return -2 end
  if n > 0 then
    for _, e in ipairs(redis.call('XRANGE', key, '-', '+')) do
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'at' then
          local at = tonumber(f[i + 1]) or 0
          if earliest < 0 or at < earliest then earliest = at end
        end
      end
    end
  end
end
return earliest
