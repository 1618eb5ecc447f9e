-- log_statuses returns every entry's ID and status, newest first, without
-- moving the entries' bodies out of Redis.
-- KEYS: log
-- ARGV: the oldest ID to list
-- returns: {id, status, id, status, ...}
local r = redis.call('XREVRANGE', KEYS[1], '+', ARGV[1])
local out = {}
for _, e in ipairs(r) do
  local f, s = e[2], ''
  for j = 1, #f, 2 do if f[j] == 's' then s = f[j + 1] end end
  out[#out + 1] = e[1]
  out[#out + 1] = s
end
return out
