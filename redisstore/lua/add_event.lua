-- add_event stores an event's payload and its entry atomically: the entry
-- holds one reference to the payload until it is fanned out. It may then
-- take an event for a fan-out consumer: the oldest not yet handed out,
-- normally the one just added.
-- KEYS: events, refs, payload
-- ARGV: body, event id, fan-out group, consumer to take an event for (''), entry fields...
-- returns: {entry id, entries taken (or false)}
redis.call('SET', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
local taken = false
if ARGV[4] ~= '' then
  -- pcall: without the group (not created yet, or lost with a Redis
  -- restart) the event is simply not taken
  local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[3], ARGV[4], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if type(r) == 'table' and r[1] then taken = r[1][2] end
end
return {id, taken}
