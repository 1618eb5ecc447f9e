-- record_health updates a hook's health after an attempt (includes/health.lua).
-- KEYS: health, disabled hooks
-- ARGV: name, value pairs (named.lua): now (ms), result (ok|fail), class (''|client|gone), health_status,
--   health_hook, and the policy: threshold, base, max (ms), mode (gitlab|off|permanent_after), after
-- returns: {fails, disabled until ms, permanently disabled (1|0), event (1: disabled now, 2: re-enabled now, 0)}
--- @include "named"
--- @include "health"
local a = named(1)
return {recordhealth(KEYS[1], KEYS[2], tonumber(a.now), a.result == 'ok', a.class, a.health_status, a.health_hook,
  healthpolicy(a))}
