-- ord_settle records the outcome of an attempt of an ordered hook's head,
-- if the caller still holds the head's lease: with the hook's health
-- (includes/health.lua) in the same script, as they share the hook's slot.
-- done and dead release the head and, when take asks for it and the next
-- head may go, lease it to the caller at once (a new token); retry keeps
-- the head with its next document, due no earlier than the hook comes
-- back; release gives the lease up (due: when to look again). The head's
-- state says since when, how often and why it is blocked.
-- KEYS: ordered ready, health, disabled hooks
-- ARGV: name, value pairs (named.lua): hook, prefix, token, key, next (done|retry|dead|release), now, due,
--   doc (retry: the next attempt's document), status, health ('1': record it), ok ('1': success), class,
--   threshold, base, max, mode, after (the health policy), w (watermark), take ('1'), newtoken, lease (ms)
-- returns: {stale (1|0), fails, disabled until ms, permanently disabled (1|0), health event (record_health's),
--   next key, next document, next verdict}
--- @include "named"
--- @include "health"
--- @include "ordered"
local a = named(1)
local k = ordkeys(a.prefix, a.hook)
if redis.call('GET', k.lease) ~= a.token then return {1, 0, 0, 0, 0} end
local now = tonumber(a.now)
local fails, until_ms, permanent, event = 0, 0, 0, 0
if a.health == '1' then
  fails, until_ms, permanent, event = recordhealth(KEYS[2], KEYS[3], now, a.ok == '1', a.class, a.status, a.hook,
    healthpolicy(a))
end
if a.next == 'retry' or a.next == 'release' then
  local due = tonumber(a.due)
  if a.next == 'retry' and redis.call('ZSCORE', k.ord, a.key) then
    redis.call('HSET', k.docs, a.key, a.doc)
    redis.call('HSETNX', k.st, 'since', now)
    redis.call('HSET', k.st, 'key', a.key, 'status', a.status, 'next', math.max(due, until_ms))
  end
  if until_ms > due then due = until_ms end
  if permanent == 1 then due = now end -- its next take dead-letters it
  redis.call('DEL', k.lease)
  if redis.call('ZCARD', k.ord) > 0 then redis.call('ZADD', KEYS[1], due, a.hook) end
  return {0, fails, until_ms, permanent, event}
end
redis.call('ZREM', k.ord, a.key)
redis.call('HDEL', k.docs, a.key)
redis.call('HDEL', k.st, 'since', 'key', 'status', 'next')
redis.call('HSET', k.st, 'done', a.key)
local verdict, key, doc, wait_until = 'wait', nil, nil, 0
if a.take == '1' then
  verdict, key, doc, wait_until = ordhead(k, tonumber(a.w), now)
else
  verdict = (redis.call('ZCARD', k.ord) == 0) and 'empty' or 'wait'
end
if verdict == 'go' or verdict == 'disabled' then
  redis.call('SET', k.lease, a.newtoken, 'PX', a.lease)
  return {0, fails, until_ms, permanent, event, key, doc, verdict}
end
redis.call('DEL', k.lease)
if verdict == 'empty' then
  redis.call('ZREM', KEYS[1], a.hook)
  return {0, fails, until_ms, permanent, event}
end
redis.call('ZADD', KEYS[1], wait_until or 0, a.hook)
if verdict == 'gone' then return {0, fails, until_ms, permanent, event, key, '', 'gone'} end
return {0, fails, until_ms, permanent, event}
