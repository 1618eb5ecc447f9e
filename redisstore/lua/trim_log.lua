-- trim_log trims a hook's log in one shard by age and length, releasing
-- the payloads of the entries dropped; an emptied log goes, and so do its
-- tails fields and its place in the shard's set of logs (kept before the
-- tails: read until it empties).
-- KEYS: log, tails, refs, logs
-- ARGV: hook id, min id, max entries, payload prefix
-- returns: how many entries went
--- @include "log"
local n = logtrim(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[1], ARGV[2], tonumber(ARGV[3]))
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1], ARGV[1] .. ':r')
  redis.call('SREM', KEYS[4], ARGV[1])
end
return n
