-- chaincheck checks and registers an event's hooks in its recursion
-- chain (chain.go says how chains are kept): a hook already triggered in
-- the chain by another event (0), or a chain that reached its limit of
-- hooks (2), is refused; a replay of the same event is not recursion.
-- ownk is the chain's own hash; rootk and overk, for a version-7 chain
-- (field, its 16 bytes, not empty), its root hash and the bucket's
-- overflow hash. ids are the hook ids; it returns a verdict per hook. A
-- root record is the 4-byte registration second, then the hook ids
-- joined by ','; in the root hash, 4 bytes and '+' when the record is in
-- the overflow hash.
local function chaincheck(ownk, rootk, overk, event, now, window, max, chain, field, ids)
  local out = {}
  -- root returns the chain's root record, if it is still in its window, and
  -- whether it is in the overflow hash.
  local function root()
    local v = redis.call('HGET', rootk, field)
    if not v then return nil end
    local over = string.sub(v, 5) == '+'
    if over then v = redis.call('HGET', overk, field) end
    if v and (struct.unpack('>I4', v) + 1) * 1000 + window > now then return v, over end
    redis.call('HDEL', rootk, field)
    if over then redis.call('HDEL', overk, field) end
    return nil
  end
  local own = field == '' or redis.call('EXISTS', ownk) == 1
  if not own and event == chain then
    -- the chain's own event, and the chain has no hash of its own: its root record
    local v, over = root()
    local hooks, seen, n = {}, {}, 0
    if v then
      for id in string.gmatch(string.sub(v, 5), '[^,]+') do
        n = n + 1
        hooks[n] = id
        seen[id] = true
      end
    end
    for i = 1, #ids do
      if seen[ids[i]] then
        out[#out + 1] = 1
      elseif n >= max then
        out[#out + 1] = 2
      else
        n = n + 1
        hooks[n] = ids[i]
        seen[ids[i]] = true
        out[#out + 1] = 1
      end
    end
    if n == 0 then return out end
    local at = struct.pack('>I4', math.floor(now / 1000))
    local rec = at .. table.concat(hooks, ',')
    if #rec <= 64 then -- hash-max-listpack-value: the root hash stays compact
      redis.call('HSET', rootk, field, rec)
      if over then redis.call('HDEL', overk, field) end
    else
      redis.call('HSET', rootk, field, at .. '+')
      redis.call('HSET', overk, field, rec)
      redis.call('PEXPIRE', overk, window)
    end
    redis.call('PEXPIRE', rootk, window)
    return out
  end
  if not own then
    -- the first event caused by a webhook request of the chain: the root
    -- record, if any, moves to the chain's own hash
    local v, over = root()
    if v then
      local args = {}
      for id in string.gmatch(string.sub(v, 5), '[^,]+') do
        args[#args + 1] = id
        args[#args + 1] = chain
      end
      if #args > 0 then redis.call('HSET', ownk, unpack(args)) end
      redis.call('HDEL', rootk, field)
      if over then redis.call('HDEL', overk, field) end
    end
  end
  for i = 1, #ids do
    local prev = redis.call('HGET', ownk, ids[i])
    if prev and prev ~= event then
      out[#out + 1] = 0
    elseif not prev and redis.call('HLEN', ownk) >= max then
      out[#out + 1] = 2
    else
      redis.call('HSET', ownk, ids[i], event)
      out[#out + 1] = 1
    end
  end
  redis.call('PEXPIRE', ownk, window)
  return out
end
