-- admit decides whether a delivery of a hook may go now: not if the hook
-- is disabled or cooling down.
-- KEYS: health
-- ARGV: now ms
-- returns: {0, 0} admitted, {1, 0} disabled until re-enabled, {2, until ms} cooling down
local h = redis.call('HMGET', KEYS[1], 'disabled', 'disabled_until')
if h[1] == '1' then return {1, 0} end
local u = tonumber(h[2] or '0') or 0
if u > tonumber(ARGV[1]) then return {2, u} end
return {0, 0}
