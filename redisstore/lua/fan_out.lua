-- fan_out fans an event out in one step: it checks and registers its
-- hooks in its recursion chain, queues the deliveries the chain allows,
-- and settles the event; the payload's reference passes from the event to
-- the deliveries that share it. An event settled already (fanned out by
-- another consumer) queues nothing and leaves its chain alone. It may then
-- take deliveries for a consumer and return them, and the event's payload
-- when they share it. Those are the oldest not yet handed out: normally
-- the ones just queued, but any others are as good (their payloads are
-- the caller's to read). A lone delivery of the payload carries it inline,
-- and the payload and its count go: references only from two holders up.
-- The deliveries of ordered hooks go to the shard's ordered inbox instead
-- (with the event's capture time), from which they move to their hooks'
-- queues; they always reference the payload, and none of them is taken.
-- KEYS: events, ready, refs, chain's own hash, chain's root hash, bucket's overflow hash, ordered inbox
-- ARGV: name, value pairs (named.lua) up to '|':
--   group, entry: the event's consumer group and entry; event: its id; prefix: the payload key prefix
--   now, window, max_hooks: ms, the chain's window in ms, the most hooks a chain may trigger
--   chain, field: the chain, and its 16 bytes ('' when it has no root record)
--   take, deliver_group, consumer: how many deliveries to take at most, for which consumer of which group
--   checked: n, how many deliveries are checked in the chain; at: the event's capture time (ms)
-- then the n hook ids, then per delivery: 's' and its document without its end, for a delivery of the
-- payload ('r' for one of an ordered hook), or 'o' and its whole document, for one with a body of its
-- own; the first n are those of the hooks
-- returns: {1} when settled already, else {0, {verdict of each of the n hooks}, entries taken,
--          {event id, payload} when an entry taken shares the event's payload, else {}}
--- @include "named"
--- @include "refs"
--- @include "allowed"
local a, at = named(1)
if redis.call('XACK', KEYS[1], a.group, a.entry) == 0 then return {1} end
redis.call('XDEL', KEYS[1], a.entry)
local verdicts, kinds, docs, _, shared, ordered = allowed(a, at, KEYS[4], KEYS[5], KEYS[6])
-- A lone delivery of the payload carries it inline: the payload and its
-- count go.
local inline = nil
if shared == 1 and ordered == 0 then inline = redis.call('GET', a.prefix .. a.event) end
local ours = {} -- the entries queued here that share the payload
local queued = 0
for j = 1, #docs do
  local d = docs[j]
  if kinds[j] == 'r' then
    redis.call('XADD', KEYS[7], '*', 'd', d .. ',"p":1}', 'at', a.at, 'ev', a.event)
  else
    if kinds[j] == 's' then
      if inline then d = d .. ',"body":' .. inline .. '}' else d = d .. ',"p":1}' end
    end
    local id = redis.call('XADD', KEYS[2], '*', 'd', d)
    queued = queued + 1
    if kinds[j] == 's' and not inline then ours[id] = true end
  end
end
if inline then addref(KEYS[3], a.prefix, a.event, -1) else addref(KEYS[3], a.prefix, a.event, shared - 1) end
local taken, payload = false, {}
local take = math.min(tonumber(a.take), queued)
if take > 0 then
  -- pcall: without the group, nothing is taken (the deliveries are queued)
  local r = redis.pcall('XREADGROUP', 'GROUP', a.deliver_group, a.consumer, 'COUNT', take, 'STREAMS', KEYS[2], '>')
  if type(r) == 'table' and r[1] then
    taken = r[1][2]
    for _, e in ipairs(taken) do
      if ours[e[1]] then
        local p = redis.call('GET', a.prefix .. a.event)
        if p then payload = {a.event, p} end
        break
      end
    end
  end
end
return {0, verdicts, taken, payload}
