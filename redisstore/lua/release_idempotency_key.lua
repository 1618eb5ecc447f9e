-- release_idempotency_key forgets a client's Idempotency-Key if it still
-- holds the event given: a claim whose event could not be kept.
-- KEYS: idempotency key
-- ARGV: event id
-- returns: 1 when forgotten, 0 when the key held something else
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
