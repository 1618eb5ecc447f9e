-- add_dead adds a dead letter that carries its payload (an ordered hook's
-- delivery), keeping the stream within its bounds (includes/dead.lua).
-- KEYS: dead, dead bytes, refs
-- ARGV: payload prefix, document, reason, now (ms), max entries, max bytes
-- returns: {trimmed for count, trimmed for bytes}
--- @include "dead"
local c, b = dead(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], '', 0, tonumber(ARGV[5]), tonumber(ARGV[6]))
return {c, b}
