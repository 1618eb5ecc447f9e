-- record_health updates a hook's health after an attempt as GitLab does
-- (a success resets; the threshold-th consecutive failure disables
-- temporarily, 1 min doubling up to a cap; a client error at the
-- threshold, or 410 Gone at once, disables until a person re-enables).
-- Like GitLab, failures reported while the hook is already disabled do
-- not count again.
-- KEYS: health, disabled hooks
-- ARGV: now ms, result (ok|fail), class (''|client|gone), threshold, base backoff ms, max backoff ms, status, hook id
-- returns: {fails, disabled until ms, permanently disabled (1|0)}
local now = tonumber(ARGV[1])
if ARGV[2] == 'ok' then
  local h = redis.call('HMGET', KEYS[1], 'last_status', 'fails')
  if h[1] ~= ARGV[7] or h[2] ~= '0' then
    redis.call('HSET', KEYS[1], 'fails', 0, 'disabled_until', 0, 'last_status', ARGV[7])
    redis.call('ZREM', KEYS[2], ARGV[8])
  end
  return {0, 0, 0}
end
local h = redis.call('HMGET', KEYS[1], 'disabled', 'disabled_until', 'fails')
local permanent = (h[1] == '1') and 1 or 0
local until_ms = tonumber(h[2] or '0') or 0
local fails = tonumber(h[3] or '0') or 0
if permanent == 0 and until_ms <= now then
  fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
  redis.call('HSET', KEYS[1], 'last_fail', now, 'last_status', ARGV[7])
  local threshold = tonumber(ARGV[4])
  until_ms = 0
  if ARGV[3] == 'gone' or (ARGV[3] == 'client' and fails >= threshold) then
    redis.call('HSET', KEYS[1], 'disabled', 1, 'disabled_reason', ARGV[7])
    redis.call('ZADD', KEYS[2], 'inf', ARGV[8])
    permanent = 1
  elseif fails >= threshold then
    until_ms = math.floor(now + math.min(tonumber(ARGV[5]) * 2 ^ math.min(fails - threshold, 30), tonumber(ARGV[6])))
    redis.call('HSET', KEYS[1], 'disabled_until', until_ms)
    redis.call('ZADD', KEYS[2], until_ms, ARGV[8])
  end
end
return {fails, until_ms, permanent}
