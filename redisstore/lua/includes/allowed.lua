-- allowed checks an event's hooks in its recursion chain (chaincheck, keys
-- ownk, rootk, overk) and keeps the deliveries the chain allows. a holds
-- the named arguments (event, now, window, max_hooks, chain, field,
-- checked: n); from ARGV[at] come the n hook ids, then per delivery its
-- kind and document ('s': of the payload, 'r': of the payload for an
-- ordered hook, 'o': with a body of its own), the first n those of the
-- hooks. It returns the verdicts, the kinds, documents and places (1-based)
-- of the deliveries kept, how many of them hold the payload ('s' and 'r'),
-- and how many of those are ordered ('r').
--- @include "chain"
local function allowed(a, at, ownk, rootk, overk)
  local n = tonumber(a.checked)
  local verdicts = {}
  if n > 0 then
    verdicts = chaincheck(ownk, rootk, overk, a.event, tonumber(a.now), tonumber(a.window),
      tonumber(a.max_hooks), a.chain, a.field, {unpack(ARGV, at, at + n - 1)})
  end
  local kinds, docs, places = {}, {}, {}
  local shared, ordered, k = 0, 0, 0
  for i = at + n, #ARGV - 1, 2 do
    k = k + 1
    if k > n or verdicts[k] == 1 then
      kinds[#kinds + 1], docs[#docs + 1], places[#places + 1] = ARGV[i], ARGV[i + 1], k
      if ARGV[i] == 's' then shared = shared + 1 end
      if ARGV[i] == 'r' then shared, ordered = shared + 1, ordered + 1 end
    end
  end
  return verdicts, kinds, docs, places, shared, ordered
end
