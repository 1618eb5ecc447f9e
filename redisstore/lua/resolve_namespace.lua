-- resolve_namespace returns the numeric id of a project or group path,
-- giving it the next id the first time it is seen, unless the token scope
-- it is given for has handed out its limit.
-- KEYS: ids by path, paths by id, last id, the scope's count
-- ARGV: "<kind>:<lower path>", kind, path as spelled, the scope's limit (0: none)
-- returns: the id, 0 when the scope is full
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
local limit = tonumber(ARGV[4])
if limit > 0 then
  if tonumber(redis.call('GET', KEYS[4]) or '0') >= limit then return 0 end
  redis.call('INCR', KEYS[4])
end
id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], ARGV[2] .. ':' .. id, ARGV[3])
return id
