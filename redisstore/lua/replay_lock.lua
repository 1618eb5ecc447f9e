-- replay_lock takes or keeps the lock of the replay feeder: one process
-- feeds replays at a time. The holder renews it; another takes it once it
-- has run out.
-- KEYS: lock
-- ARGV: token, ttl ms
-- returns: 1 when the caller holds the lock, else 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
