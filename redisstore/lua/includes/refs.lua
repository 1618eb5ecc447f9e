-- addref adjusts the reference count of the payload of event ev (the
-- field ev of the hash refs) by delta; at zero the payload (prefix .. ev)
-- goes. An empty ev (a delivery with a payload of its own) is nothing.
local function addref(refs, prefix, ev, delta)
  if ev == '' or delta == 0 then return end
  if redis.call('HINCRBY', refs, ev, delta) <= 0 then
    redis.call('HDEL', refs, ev)
    redis.call('DEL', prefix .. ev)
  end
end
