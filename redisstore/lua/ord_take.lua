-- ord_take leases the heads of ordered hooks of one hook slot that may go
-- now: hooks due in the ready set, not leased by another process, whose
-- head's capture time is below the watermark (no event captured before it
-- can still join the queue) and which are not disabled for a while. A
-- hook disabled until re-enabled has its head leased too, to be
-- dead-lettered. A head whose document is missing is dropped and
-- reported; a hook with an empty queue leaves the ready set.
-- KEYS: ordered ready
-- ARGV: name, value pairs (named.lua): now (ms), w (watermark ms), max (heads), scan (hooks looked at
--   at most), token (lease token prefix: the hook id is added), lease (ms), prefix (the slot's "hook:" prefix)
-- returns: per head, {hook id, order key, document, verdict ('go'|'disabled'|'gone')}
--- @include "named"
--- @include "ordered"
local a = named(1)
local now, w, max = tonumber(a.now), tonumber(a.w), tonumber(a.max)
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(a.scan))
for _, id in ipairs(due) do
  if #out >= max then break end
  local k = ordkeys(a.prefix, id)
  if redis.call('EXISTS', k.lease) == 0 then
    local verdict, key, doc, until_ms = ordhead(k, w, now)
    if verdict == 'empty' then
      redis.call('ZREM', KEYS[1], id)
    elseif verdict == 'gone' then
      out[#out + 1] = {id, key, '', 'gone'}
    elseif verdict == 'wait' then
      if until_ms > 0 then redis.call('ZADD', KEYS[1], until_ms, id) end
    else
      redis.call('SET', k.lease, a.token .. ':' .. id, 'PX', a.lease)
      out[#out + 1] = {id, key, doc, verdict}
    end
  end
end
return out
