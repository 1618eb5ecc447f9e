package redisstore

// Consumer group names.
const (
	GroupFanout  = "fanout"
	GroupDeliver = "deliver"
)

// Keys names the Redis keys of one namespace.
type Keys struct {
	// Namespace prefixes every key, so several deployments can share a Redis.
	Namespace string
}

// Events is the stream the capture handler appends to.
func (k Keys) Events() string { return k.Namespace + ":{e0}:events" }

// Ready is the stream of deliveries waiting for a worker.
func (k Keys) Ready() string { return k.Namespace + ":{d0}:ready" }
