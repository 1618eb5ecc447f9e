package redisstore

import (
	"strconv"
	"strings"
)

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

// Schedule is the sorted set of deliveries waiting for a time (retries,
// disabled hooks, saturated hooks, rate limits), scored by due time in ms.
func (k Keys) Schedule() string { return k.Namespace + ":{d0}:sched" }

// Dead is the dead-letter stream: deliveries given up on, with the reason.
func (k Keys) Dead() string { return k.Namespace + ":{d0}:dead" }

// DeadBytes counts the bytes of the dead letters' entries (their "n"
// fields), kept by the scripts that add and remove them.
func (k Keys) DeadBytes() string { return k.Namespace + ":{d0}:dead:bytes" }

// Health is a hook's failure state (GitLab's recent_failures and
// disabled_until), shared by every process.
func (k Keys) Health(hookID int64) string {
	return k.Namespace + ":{d0}:hook:" + strconv.FormatInt(hookID, 10) + ":health"
}

// RateWindow counts deliveries of a top-level namespace in one minute.
func (k Keys) RateWindow(topLevel string, minute int64) string {
	return k.Namespace + ":{d0}:rate:" + strings.ToLower(topLevel) + ":" + strconv.FormatInt(minute, 10)
}

// Chain records which hooks one X-Gitlab-Event-UUID chain triggered, for
// recursion detection.
func (k Keys) Chain(chain string) string { return k.Namespace + ":{d0}:chain:" + chain }

// Paused holds "1" while an operator has paused deliveries everywhere.
func (k Keys) Paused() string { return k.Namespace + ":{d0}:paused" }

// HookLog is a hook's delivery log ("Recent events"): a stream of attempts,
// trimmed to the retention and a maximum length on every append.
func (k Keys) HookLog(hookID int64) string {
	return k.Namespace + ":{d0}:hook:" + strconv.FormatInt(hookID, 10) + ":log"
}

// LatestEvent holds the payload of the latest event of a trigger seen for
// a project, the sample a test request of that trigger sends.
func (k Keys) LatestEvent(project, trigger string) string {
	return k.Namespace + ":{d0}:project:" + strings.ToLower(project) + ":last_" + trigger
}

// Throttle counts the calls of a rate-limited API action (test, resend) by
// one caller on one project or group in one window.
func (k Keys) Throttle(action, scope string, window int64) string {
	return k.Namespace + ":{d0}:throttle:" + action + ":" + scope + ":" + strconv.FormatInt(window, 10)
}

// Disabled is a sorted set of the hooks disabled, scored by the time they
// come back (+inf: until re-enabled), for counting them cheaply.
func (k Keys) Disabled() string { return k.Namespace + ":{d0}:disabled" }
