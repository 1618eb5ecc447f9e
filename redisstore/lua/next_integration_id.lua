-- next_integration_id hands out an integration id from the integrations'
-- own counter. Integrations saved before it existed took their ids from
-- the hooks' counter, so on first use it starts above the largest of them:
-- no two integrations ever share an id.
-- KEYS: integrations' id counter, integrations
-- ARGV: (none)
-- returns: the new id
if redis.call('EXISTS', KEYS[1]) == 0 then
  local top = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    local ok, r = pcall(cjson.decode, v)
    if ok and type(r) == 'table' and tonumber(r.id) and tonumber(r.id) > top then top = tonumber(r.id) end
  end
  redis.call('SET', KEYS[1], top)
end
return redis.call('INCR', KEYS[1])
