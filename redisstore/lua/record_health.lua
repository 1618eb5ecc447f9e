-- record_health updates a hook's health after an attempt (includes/health.lua).
-- KEYS: health, disabled hooks
-- ARGV: now ms, result (ok|fail), class (''|client|gone), status, hook id,
--   then the policy: threshold, base backoff ms, max backoff ms, mode (gitlab|off|permanent_after), permanent after
-- returns: {fails, disabled until ms, permanently disabled (1|0), event (1: disabled now, 2: re-enabled now, 0)}
--- @include "health"
local fails, until_ms, permanent, event = recordhealth(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2] == 'ok', ARGV[3], ARGV[4],
  ARGV[5], {threshold = tonumber(ARGV[6]), base = tonumber(ARGV[7]), max = tonumber(ARGV[8]), mode = ARGV[9],
  after = tonumber(ARGV[10])})
return {fails, until_ms, permanent, event}
