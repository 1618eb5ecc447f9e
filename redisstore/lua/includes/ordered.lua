-- keyms is the capture time (ms) an order key carries: an event's UUIDv7
-- (its first 48 bits). A key of another version carries none (0).
local function keyms(key)
  if string.sub(key, 15, 15) ~= '7' then return 0 end
  return tonumber(string.sub(key, 1, 8) .. string.sub(key, 10, 13), 16) or 0
end

-- ordkeys are the keys of ordered hook id, from its slot's prefix.
local function ordkeys(prefix, id)
  local p = prefix .. id
  return {ord = p .. ':ord', docs = p .. ':ordd', lease = p .. ':ordlease', st = p .. ':ordst', health = p .. ':health'}
end

-- ordhead returns the head of a hook's queue (key, document) when it may
-- go: its capture time is below the watermark w and the hook is not
-- disabled for a while. verdict is 'go', 'disabled' (until re-enabled:
-- the head is to be dead-lettered), 'gone' (its document is missing: it
-- was dropped), 'wait' (not yet: until is when to look again, 0 for the
-- watermark) or 'empty'.
local function ordhead(k, w, now)
  local h = redis.call('ZRANGE', k.ord, 0, 0)
  if #h == 0 then return 'empty' end
  local key = h[1]
  local doc = redis.call('HGET', k.docs, key)
  if not doc then
    redis.call('ZREM', k.ord, key)
    return 'gone', key
  end
  local hs = redis.call('HMGET', k.health, 'disabled', 'disabled_until')
  if hs[1] == '1' then return 'disabled', key, doc end
  local until_ms = tonumber(hs[2] or '0') or 0
  if until_ms > now then return 'wait', key, doc, until_ms end
  if keyms(key) >= w then return 'wait', key, doc, 0 end
  return 'go', key, doc
end
