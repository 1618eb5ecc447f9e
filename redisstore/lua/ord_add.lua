-- ord_add adds deliveries to an ordered hook's queue, each under its order
-- key (its event's id, or a fresh one for a delivery put at the tail); a
-- key already there is left as it is, so a move done twice adds nothing.
-- The hook becomes ready unless it waits for a retry already. A key below
-- the last one released comes too late to keep its place: it is counted.
-- KEYS: ordered ready, queue, documents, state
-- ARGV: hook id, then per delivery: order key, "<shard>|<document>"
-- returns: {added, late}
local added, late = 0, 0
local done = redis.call('HGET', KEYS[4], 'done')
for i = 2, #ARGV - 1, 2 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[2], 0, ARGV[i])
    added = added + 1
    if done and ARGV[i] < done then late = late + 1 end
  end
end
if added > 0 then redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[1]) end
return {added, late}
