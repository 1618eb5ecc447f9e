-- append_log adds an entry written outside the queue (a test, a resend):
-- its payload is its own.
-- KEYS: log, tails, refs
-- ARGV: hook id, shard, ms, max entries, status, entry, payload prefix
-- returns: the entry's id
--- @include "log"
return logappend(KEYS[1], KEYS[2], KEYS[3], ARGV[7], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4]), ARGV[3], ARGV[5],
  ARGV[6], '', false)
