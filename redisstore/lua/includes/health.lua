-- health updates a hook's health (key hk, and its entry in the disabled
-- index dk) after an attempt as GitLab does (a success resets; the
-- threshold-th consecutive failure disables temporarily, 1 min doubling up
-- to a cap; a client error at the threshold, or 410 Gone at once, disables
-- until a person re-enables). Like GitLab, failures reported while the
-- hook is already disabled do not count again. result is ok|fail, class
-- ''|client|gone; it returns {fails, disabled until ms, permanently
-- disabled (1|0)}.
local function health(hk, dk, now, result, class, threshold, base, maxb, status, hook)
  if result == 'ok' then
    local h = redis.call('HMGET', hk, 'last_status', 'fails')
    if h[1] ~= status or h[2] ~= '0' then
      redis.call('HSET', hk, 'fails', 0, 'disabled_until', 0, 'last_status', status)
      redis.call('ZREM', dk, hook)
    end
    return {0, 0, 0}
  end
  local h = redis.call('HMGET', hk, 'disabled', 'disabled_until', 'fails')
  local permanent = (h[1] == '1') and 1 or 0
  local until_ms = tonumber(h[2] or '0') or 0
  local fails = tonumber(h[3] or '0') or 0
  if permanent == 0 and until_ms <= now then
    fails = redis.call('HINCRBY', hk, 'fails', 1)
    redis.call('HSET', hk, 'last_fail', now, 'last_status', status)
    local threshold = threshold
    until_ms = 0
    if class == 'gone' or (class == 'client' and fails >= threshold) then
      redis.call('HSET', hk, 'disabled', 1, 'disabled_reason', status)
      redis.call('ZADD', dk, 'inf', hook)
      permanent = 1
    elseif fails >= threshold then
      until_ms = math.floor(now + math.min(base * 2 ^ math.min(fails - threshold, 30), maxb))
      redis.call('HSET', hk, 'disabled_until', until_ms)
      redis.call('ZADD', dk, until_ms, hook)
    end
  end
  return {fails, until_ms, permanent}
end
