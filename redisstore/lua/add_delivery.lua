-- add_delivery queues a delivery directly (tests, tools, and work moved
-- from the layout before shards); one of the shared payload takes a
-- reference to it, storing it if needed.
-- KEYS: ready, refs, payload
-- ARGV: delivery, event id ('' if not shared), body
-- returns: the ready entry's id
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
