-- append_log adds an entry written outside the queue (a test, a resend):
-- its payload is its own.
-- KEYS: log, logs, refs
-- ARGV: hook id, shard, min id, ms, max entries, status, entry, payload prefix
-- returns: the entry's id
--- @include "log"
return logappend(KEYS[1], KEYS[2], KEYS[3], ARGV[8], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], '', false)
