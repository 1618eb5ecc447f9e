-- recordhealth updates a hook's health after an attempt as GitLab does: a
-- success resets; the threshold-th consecutive failure disables
-- temporarily, 1 min doubling up to a cap. What disables until a person
-- re-enables depends on pol.mode: 'gitlab' (the webhooks page's rule), a
-- client error at the threshold or a 410 Gone at once; 'permanent_after'
-- (newer GitLab), the pol.after-th failure of any kind; 'off', nothing
-- (failures are still counted, and a hook disabled before stays so).
-- Like GitLab, failures reported while the hook is already disabled do
-- not count again. healthk is the hook's health hash, disabledk its slot's
-- disabled index; ok tells a success; class is '', 'client' or 'gone';
-- pol holds threshold, base and max (ms), mode and after. It returns the
-- failures, when a temporary disable ends (ms, 0: none), whether the
-- hook is disabled until re-enabled (1|0), and what changed: 1 when this
-- attempt disabled it, 2 when this success ended a disable, 0 otherwise.
local function recordhealth(healthk, disabledk, now, ok, class, status, hook, pol)
  if ok then
    local h = redis.call('HMGET', healthk, 'last_status', 'fails', 'disabled_until')
    local event = ((tonumber(h[3] or '0') or 0) > 0) and 2 or 0
    if h[1] ~= status or h[2] ~= '0' then
      redis.call('HSET', healthk, 'fails', 0, 'disabled_until', 0, 'last_status', status)
      redis.call('ZREM', disabledk, hook)
    end
    return 0, 0, 0, event
  end
  local h = redis.call('HMGET', healthk, 'disabled', 'disabled_until', 'fails')
  local permanent = (h[1] == '1') and 1 or 0
  local until_ms = tonumber(h[2] or '0') or 0
  local fails = tonumber(h[3] or '0') or 0
  if permanent == 0 and until_ms <= now then
    fails = redis.call('HINCRBY', healthk, 'fails', 1)
    redis.call('HSET', healthk, 'last_fail', now, 'last_status', status)
    until_ms = 0
    local forever
    if pol.mode == 'off' then
      return fails, 0, 0, 0
    elseif pol.mode == 'permanent_after' then
      forever = fails >= pol.after
    else
      forever = class == 'gone' or (class == 'client' and fails >= pol.threshold)
    end
    if forever then
      redis.call('HSET', healthk, 'disabled', 1, 'disabled_reason', status)
      redis.call('ZADD', disabledk, 'inf', hook)
      return fails, 0, 1, 1
    elseif fails >= pol.threshold then
      until_ms = math.floor(now + math.min(pol.base * 2 ^ math.min(fails - pol.threshold, 30), pol.max))
      redis.call('HSET', healthk, 'disabled_until', until_ms)
      redis.call('ZADD', disabledk, until_ms, hook)
      return fails, until_ms, 0, 1
    end
  end
  return fails, until_ms, permanent, 0
end

-- healthpolicy is the policy recordhealth takes, from the named arguments
-- threshold, base, max (ms), mode and after (HealthPolicy.args).
local function healthpolicy(a)
  return {threshold = tonumber(a.threshold), base = tonumber(a.base), max = tonumber(a.max), mode = a.mode,
    after = tonumber(a.after)}
end
