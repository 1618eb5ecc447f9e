-- record_health updates a hook's health after an attempt (includes/health.lua).
-- KEYS: health, disabled hooks
-- ARGV: now ms, result (ok|fail), class (''|client|gone), threshold, base backoff ms, max backoff ms, status, hook id
-- returns: {fails, disabled until ms, permanently disabled (1|0)}
--- @include "health"
return health(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), ARGV[7], ARGV[8])
