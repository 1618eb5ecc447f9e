-- drop_ordin removes entries of a shard's ordered inbox that were added to
-- their hooks' queues, releasing the payload each held. An entry removed
-- already (another process moved it too) releases nothing.
-- KEYS: ordered inbox, refs
-- ARGV: payload prefix, then per entry: its id, its event id
-- returns: how many were removed here
--- @include "refs"
local n = 0
for i = 2, #ARGV - 1, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    addref(KEYS[2], ARGV[1], ARGV[i + 1], -1)
    n = n + 1
  end
end
return n
