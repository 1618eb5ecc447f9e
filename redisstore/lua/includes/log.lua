--- @include "refs"
-- A hook's log in one shard is a stream. An entry's ID is
-- "<ms>-<k*64+shard>" (k counting up within the millisecond), so its
-- number names its shard; the caller's clock gives ms, unless the stream
-- is ahead. An entry of the shared payload holds a reference to it ("p");
-- entries trimmed (older than minid, or beyond maxlen) release theirs.
--
-- The shard's hash tails names each hook's log there: field <hook> is its
-- last entry's ID (so an append reads no entry), and <hook>:r counts its
-- entries that hold a reference. A log with none is trimmed without
-- reading what it drops, by the append itself (XADD MAXLEN). A log without
-- the count (written before it was kept) is read as it is trimmed, until
-- it empties. Appends trim by length only; the janitor trims every log by
-- age (trim_log) once a minute.

-- logtrim drops the entries of hook's log key older than minid ('0': none
-- by age) and beyond the newest maxlen, and returns how many went. held is
-- how many of its entries hold a reference, -1 when unknown, nil to read it
-- from tails.
local function logtrim(key, tails, refs, prefix, hook, minid, maxlen, held)
  local n = redis.call('XLEN', key)
  if n == 0 then return 0 end
  if held == nil then held = tonumber(redis.call('HGET', tails, hook .. ':r') or '-1') end
  if held == 0 then
    -- nothing to release: trim without reading
    local total = 0
    if minid ~= '0' then total = redis.call('XTRIM', key, 'MINID', minid) end
    if n - total > maxlen then total = total + redis.call('XTRIM', key, 'MAXLEN', maxlen) end
    return total
  end
  local old = {}
  if minid ~= '0' then old = redis.call('XRANGE', key, '-', '(' .. minid, 'COUNT', 1000) end
  local total = #old
  if n - total > maxlen then total = n - maxlen end
  if total == 0 then return 0 end
  if total > #old then old = redis.call('XRANGE', key, '-', '+', 'COUNT', total) end
  local released = 0
  for _, e in ipairs(old) do
    local f = e[2]
    for i = 1, #f, 2 do
      if f[i] == 'p' then
        addref(refs, prefix, f[i + 1], -1)
        released = released + 1
      end
    end
  end
  redis.call('XTRIM', key, 'MAXLEN', n - total)
  if held > 0 then redis.call('HINCRBY', tails, hook .. ':r', -released) end
  return total
end

-- logappend appends an entry (its status and document) to hook's log key,
-- trims the log to maxlen entries and returns the entry's ID. An entry
-- that refers to the payload of event ev takes a reference to it, unless
-- its caller handed over one it owned (owned).
local function logappend(key, tails, refs, prefix, hook, shard, maxlen, ms, status, entry, ev, owned)
  local t = redis.call('HMGET', tails, hook, hook .. ':r')
  local last, held, new = t[1], tonumber(t[2] or '-1'), false
  if not last then
    -- a log the tails do not name yet: new, or written before them
    local e = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #e > 0 then last = e[1][1] else held, new = 0, true end
  end
  local m, k = tonumber(ms), 0
  if last then
    local lm, ls = string.match(last, '^(%d+)%-(%d+)$')
    lm, ls = tonumber(lm), tonumber(ls)
    if lm > m then m = lm end
    if lm == m then k = math.floor(ls / 64) + 1 end
  end
  if k * 64 + shard >= 1000 then m, k = m + 1, 0 end
  local id = string.format('%.0f', m) .. '-' .. (k * 64 + shard)
  if held == 0 and ev == '' then
    -- no entry holds a reference: the append trims what it drops unread
    redis.call('XADD', key, 'MAXLEN', maxlen, id, 's', status, 'l', entry)
    if new then redis.call('HSET', tails, hook, id, hook .. ':r', 0) else redis.call('HSET', tails, hook, id) end
    return id
  end
  if ev ~= '' then
    redis.call('XADD', key, id, 's', status, 'l', entry, 'p', ev)
    if not owned then addref(refs, prefix, ev, 1) end
    if held >= 0 then held = held + 1 end
  else
    redis.call('XADD', key, id, 's', status, 'l', entry)
  end
  if held >= 0 then redis.call('HSET', tails, hook, id, hook .. ':r', held) else redis.call('HSET', tails, hook, id) end
  logtrim(key, tails, refs, prefix, hook, '0', tonumber(maxlen), held)
  return id
end
