--- @include "refs"
-- A hook's log in one shard is a stream. An entry's ID is
-- "<ms>-<k*64+shard>" (k counting up within the millisecond), so its
-- number names its shard; the caller's clock gives ms, unless the stream
-- is ahead. An entry of the shared payload holds a reference to it ("p");
-- entries trimmed (older than minid, or beyond maxlen) release theirs.

-- logtrim drops the entries of log key older than minid ('0': none by
-- age) and beyond the newest maxlen, and returns how many went.
local function logtrim(key, refs, prefix, minid, maxlen)
  local n = redis.call('XLEN', key)
  if n == 0 then return 0 end
  local old = {}
  if minid ~= '0' then old = redis.call('XRANGE', key, '-', '(' .. minid, 'COUNT', 1000) end
  local total = #old
  if n - total > maxlen then total = n - maxlen end
  if total == 0 then return 0 end
  if total > #old then old = redis.call('XRANGE', key, '-', '+', 'COUNT', total) end
  for _, e in ipairs(old) do
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'p' then addref(refs, prefix, f[i + 1], -1) end
    end
  end
  redis.call('XTRIM', key, 'MAXLEN', n - total)
  return total
end

-- logappend appends an entry (its status and document) to log key, notes
-- the hook in the shard's set of logs, trims the log and returns the
-- entry's ID. An entry that refers to the payload of event ev takes a
-- reference to it, unless its caller handed over one it owned (owned).
local function logappend(key, logs, refs, prefix, hook, shard, minid, ms, maxlen, status, entry, ev, owned)
  local m, k = tonumber(ms), 0
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local lm, ls = string.match(last[1][1], '^(%d+)%-(%d+)$')
    lm, ls = tonumber(lm), tonumber(ls)
    if lm > m then m = lm end
    if lm == m then k = math.floor(ls / 64) + 1 end
  end
  if k * 64 + shard >= 1000 then m, k = m + 1, 0 end
  local id = string.format('%.0f', m) .. '-' .. (k * 64 + shard)
  if ev ~= '' then
    redis.call('XADD', key, id, 's', status, 'l', entry, 'p', ev)
    if not owned then addref(refs, prefix, ev, 1) end
  else
    redis.call('XADD', key, id, 's', status, 'l', entry)
  end
  redis.call('SADD', logs, hook)
  logtrim(key, refs, prefix, minid, tonumber(maxlen))
  return id
end
