-- resolve_namespace returns the numeric id of a project or group path,
-- giving it the next id the first time it is seen.
-- KEYS: ids by path, paths by id, last id
-- ARGV: "<kind>:<lower path>", kind, path as spelled
-- returns: the id
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], ARGV[2] .. ':' .. id, ARGV[3])
return id
