--- @include "refs"
-- dead adds a dead letter and keeps the stream within its bounds. A dead
-- letter records its size (document, reason and the shared payload it
-- holds, counted whole for each holder: a bound, not an exact share) in
-- its "n" field and in the dead-bytes counter, and the event whose payload
-- it holds in "ev". The oldest are trimmed, releasing their payloads,
-- while the stream holds more entries or bytes than its bounds. Entries
-- are read one at a time when only the byte bound is exceeded, so no more
-- is copied into the script than is dropped. It returns how many were
-- trimmed for the count, and how many for the bytes.
local function dead(stream, counter, refs, prefix, doc, reason, now, ev, plen, maxlen, maxbytes)
  local n = #doc + #reason + plen
  local len = redis.call('XLEN', stream)
  if len == 0 then redis.call('DEL', counter) end
  if ev ~= '' then
    redis.call('XADD', stream, '*', 'd', doc, 'reason', reason, 'at', now, 'n', n, 'ev', ev)
  else
    redis.call('XADD', stream, '*', 'd', doc, 'reason', reason, 'at', now, 'n', n)
  end
  len = len + 1
  local bytes = redis.call('INCRBY', counter, n)
  local by_count, by_bytes = 0, 0
  while len > 0 and (len > maxlen or bytes > maxbytes) do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', math.min(math.max(len - maxlen, 1), 1000))
    for _, e in ipairs(batch) do
      if len <= maxlen and bytes <= maxbytes then break end
      local f = e[2]
      for i = 1, #f, 2 do
        if f[i] == 'n' then bytes = bytes - (tonumber(f[i + 1]) or 0) end
        if f[i] == 'ev' then addref(refs, prefix, f[i + 1], -1) end
      end
      redis.call('XDEL', stream, e[1])
      if len > maxlen then by_count = by_count + 1 else by_bytes = by_bytes + 1 end
      len = len - 1
    end
  end
  if len == 0 or bytes <= 0 then
    redis.call('DEL', counter)
  elseif by_count + by_bytes > 0 then
    redis.call('SET', counter, bytes)
  end
  return by_count, by_bytes
end
