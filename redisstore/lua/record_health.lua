-- record_health updates a hook's health after an attempt (includes/health.lua).
-- KEYS: health, disabled hooks
-- ARGV: now ms, result (ok|fail), class (''|client|gone), threshold, base backoff ms, max backoff ms, status, hook id
-- returns: {fails, disabled until ms, permanently disabled (1|0)}
--- @include "health"
local fails, until_ms, permanent = recordhealth(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2] == 'ok', ARGV[3], ARGV[7],
  ARGV[8], {threshold = tonumber(ARGV[4]), base = tonumber(ARGV[5]), max = tonumber(ARGV[6])})
return {fails, until_ms, permanent}
