-- note_shards raises the recorded shard count of the namespace to ARGV[1].
-- KEYS: shard count
-- ARGV: this process's shard count
-- returns: the most shards any process recorded
local v = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if v < tonumber(ARGV[1]) then
  v = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], v)
end
return v
