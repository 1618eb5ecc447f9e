-- move_due puts due scheduled deliveries back on the ready stream. It is
-- atomic, so every process may run it at once.
-- KEYS: schedule, ready
-- ARGV: now ms, limit
-- returns: {how many moved, the next due time in ms ('-1': none)}
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'd', m)
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or '-1'}
