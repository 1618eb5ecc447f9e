--- @include "refs"
--- @include "dead"
--- @include "log"
-- settle records the queue side of one delivery attempt (settle.lua says
-- what), with the named arguments a and the keys K of settle.lua.
local function settle(a, K)
  if redis.call('XACK', K[1], a.group, a.entry) == 0 then return {1, 0, 0, ''} end
  redis.call('XDEL', K[1], a.entry)
  local logid = ''
  -- A delivery done whose log entry refers to its payload hands its
  -- reference to the entry: two count updates fewer.
  local handed = a.log_entry ~= nil and a.next == 'done' and a.log_ev ~= '' and a.log_ev == a.ev
  if a.log_entry ~= nil then
    logid = logappend(K[6], K[7], K[5], a.prefix, a.hook, tonumber(a.shard), tonumber(a.log_max), a.log_ms,
      a.status, a.log_entry, a.log_ev, handed)
  end
  local c, b = 0, 0
  if a.next == 'retry' then
    if redis.call('ZADD', K[2], a.due, a.member) == 0 then
      -- the same delivery (of an event added twice) waits already: one
      -- member holds one reference
      addref(K[5], a.prefix, a.ev, -1)
    end
  elseif a.next == 'dead' then
    c, b = dead(K[3], K[4], K[5], a.prefix, a.doc, a.reason, a.now, a.ev, tonumber(a.plen),
      tonumber(a.max_dead), tonumber(a.max_dead_bytes))
  elseif not handed then
    addref(K[5], a.prefix, a.ev, -1)
  end
  return {0, c, b, logid}
end
