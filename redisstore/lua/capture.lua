-- capture fans an event out as it is captured, in one step: it checks and
-- registers the event's hooks in its recursion chain, and queues the
-- deliveries the chain allows; the event itself is never queued. The
-- event's payload is stored once when two deliveries or more share it
-- (counted in refs); a lone delivery carries it inline. It may then take
-- deliveries for a consumer, normally the ones just queued: of those it
-- returns only their place, as the caller holds them already. The
-- deliveries of ordered hooks go to the shard's ordered inbox instead
-- (with the event's capture time), from which they move to their hooks'
-- queues; they always reference the stored payload.
-- KEYS: ready, refs, payload, chain's own hash, chain's root hash, bucket's overflow hash, ordered inbox
-- ARGV: name, value pairs (named.lua) up to '|':
--   event: the event's id; body: its payload; at: its capture time (ms)
--   now, window, max_hooks: ms, the chain's window in ms, the most hooks a chain may trigger
--   chain, field: the chain, and its 16 bytes ('' when it has no root record)
--   take, deliver_group, consumer: how many deliveries to take at most, for which consumer of which group
--   checked: n, how many deliveries are checked in the chain
-- then the n hook ids, then per delivery: 's' and its document without its end, for a delivery of the
-- payload ('r' for one of an ordered hook), or 'o' and its whole document, for one with a body of its
-- own; the first n are those of the hooks
-- returns: {{verdict of each of the n hooks}, {entry taken: {id, its delivery's place (1-based)} for the
--          ones queued here, {id, fields} for others}, whether the payload is shared (1|0)}
--- @include "named"
--- @include "allowed"
local a, at = named(1)
local verdicts, kinds, docs, places, shared, ordered = allowed(a, at, KEYS[4], KEYS[5], KEYS[6])
local stored = shared > 1 or ordered > 0
if stored then
  redis.call('SET', KEYS[3], a.body)
  redis.call('HINCRBY', KEYS[2], a.event, shared)
end
local ours = {}
for j = 1, #docs do
  local d = docs[j]
  if kinds[j] == 'r' then
    redis.call('XADD', KEYS[7], '*', 'd', d .. ',"p":1}', 'at', a.at, 'ev', a.event)
  else
    if kinds[j] == 's' then
      if stored then d = d .. ',"p":1}' else d = d .. ',"body":' .. a.body .. '}' end
    end
    ours[redis.call('XADD', KEYS[1], '*', 'd', d)] = places[j]
  end
end
local taken = {}
local take = math.min(tonumber(a.take), #docs - ordered)
if take > 0 then
  -- pcall: without the group, nothing is taken (the deliveries are queued)
  local r = redis.pcall('XREADGROUP', 'GROUP', a.deliver_group, a.consumer, 'COUNT', take, 'STREAMS', KEYS[1], '>')
  if type(r) == 'table' and r[1] then
    for _, e in ipairs(r[1][2]) do
      if ours[e[1]] then taken[#taken + 1] = {e[1], ours[e[1]]} else taken[#taken + 1] = e end
    end
  end
end
return {verdicts, taken, stored and 1 or 0}
