package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Consumer group names.
const (
	GroupFanout  = "fanout"
	GroupDeliver = "deliver"
)

// MaxShards bounds the queue shards: a log entry's number carries its
// shard in its sequence (seq mod 64), so entries can be found by number.
const MaxShards = 64

// HookSlots is how many hash slots the hooks' shared state (health, the
// disabled index, rate windows) is spread over. It is fixed, unlike the
// queue shards, so changing `shards` never moves a hook's health.
const HookSlots = 16

// Keys names the Redis keys of one namespace.
//
// Queue shard i holds, under the hash tag {q<i>.<n>}, everything an event and
// its deliveries touch: the events stream, the payloads (each stored once
// per event, with a reference count), the ready stream, the schedule, the
// dead letters and the hooks' delivery logs of that shard. An event's
// shard is chosen by its chain (X-Gitlab-Event-UUID), so the recursion
// guard's keys are in the same slot. Every script stays inside one slot.
type Keys struct {
	// Namespace prefixes every key, so several deployments can share a Redis.
	Namespace string
}

func (k Keys) shard(i int) string { return k.Namespace + ":{" + shardTags[i] + "}:" }

// Events is shard i's stream of captured events (their metadata; the
// payload is in Payload).
func (k Keys) Events(i int) string { return k.shard(i) + "events" }

// Payload holds the body of an event of shard i, once, for every delivery,
// retry, dead letter and log entry that refers to it.
func (k Keys) Payload(i int, eventID string) string { return k.PayloadPrefix(i) + eventID }

// PayloadPrefix is Payload without the event ID, for scripts that free
// payloads they find in entries.
func (k Keys) PayloadPrefix(i int) string { return k.shard(i) + "p:" }

// Refs counts, per event ID, the holders of each payload of shard i: the
// event until fanned out, then its deliveries (ready, scheduled or dead)
// and the log entries that refer to it. At zero the payload goes.
func (k Keys) Refs(i int) string { return k.shard(i) + "refs" }

// Ready is shard i's stream of deliveries waiting for a worker.
func (k Keys) Ready(i int) string { return k.shard(i) + "ready" }

// Schedule is shard i's sorted set of deliveries waiting for a time
// (retries, disabled hooks, saturated hooks, rate limits), scored by due
// time in ms.
func (k Keys) Schedule(i int) string { return k.shard(i) + "sched" }

// Dead is shard i's dead-letter stream: deliveries given up on, with the
// reason.
func (k Keys) Dead(i int) string { return k.shard(i) + "dead" }

// DeadBytes counts the bytes of shard i's dead letters (their "n" fields).
func (k Keys) DeadBytes(i int) string { return k.shard(i) + "dead:bytes" }

// HookLog is the part of a hook's delivery log ("Recent events") that
// lives in shard i: the attempts of deliveries of that shard's events.
func (k Keys) HookLog(i int, hookID int64) string {
	return k.shard(i) + "hook:" + strconv.FormatInt(hookID, 10) + ":log"
}

// LogTails names the hooks with a log in shard i: field <hook id> holds
// its last entry's ID, <hook id>:r how many of its entries hold a payload
// reference (lua/includes/log.lua).
func (k Keys) LogTails(i int) string { return k.shard(i) + "log:tails" }

// Logs is the set of hooks with a log in shard i that was kept before the
// tails; the janitor still trims the logs it names, until they empty.
func (k Keys) Logs(i int) string { return k.shard(i) + "logs" }

// hookSlot is the hash tag of a hook's shared state.
func (k Keys) hookSlot(j int) string { return k.Namespace + ":{" + hookTags[j] + "}:" }

func hookSlotOf(hookID int64) int { return int(uint64(hookID) % HookSlots) }

// Health is a hook's failure state (GitLab's recent_failures and
// disabled_until), shared by every process.
func (k Keys) Health(hookID int64) string {
	return k.hookSlot(hookSlotOf(hookID)) + "hook:" + strconv.FormatInt(hookID, 10) + ":health"
}

// Disabled is a sorted set of the disabled hooks of hook slot j, scored by
// the time they come back (+inf: until re-enabled), for counting them
// cheaply. A hook is in the slot of its health.
func (k Keys) Disabled(j int) string { return k.hookSlot(j) + "disabled" }

// DisabledOf is the Disabled set that holds hookID.
func (k Keys) DisabledOf(hookID int64) string { return k.Disabled(hookSlotOf(hookID)) }

// RateWindow counts deliveries of a top-level namespace in one minute.
func (k Keys) RateWindow(topLevel string, minute int64) string {
	topLevel = strings.ToLower(topLevel)
	return k.hookSlot(int(hash32(topLevel)%HookSlots)) + "rate:" + topLevel + ":" + strconv.FormatInt(minute, 10)
}

// Paused holds "1" while an operator has paused deliveries everywhere.
func (k Keys) Paused() string { return k.Namespace + ":{d0}:paused" }

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

// Idempotency holds the event ID a caller's Idempotency-Key was first
// used for (webhooks_ingest): per caller, so one token cannot swallow
// another's events, and hashed, so any client string makes a safe key.
func (k Keys) Idempotency(caller, key string) string {
	sum := sha256.Sum256([]byte(caller + "\x00" + key))
	return k.Namespace + ":{i0}:idem:" + hex.EncodeToString(sum[:])
}

// shardCount holds the most shards any process of the namespace used.
func (k Keys) shardCount() string { return k.Namespace + ":{d0}:shards" }

// The keys of the layout before shards (v1): three hash slots, payloads
// copied into every delivery. The store drains what they still hold into
// the shards (legacy.go) and reads their logs until they expire.
func (k Keys) legacyEvents() string   { return k.Namespace + ":{e0}:events" }
func (k Keys) legacyReady() string    { return k.Namespace + ":{d0}:ready" }
func (k Keys) legacySchedule() string { return k.Namespace + ":{d0}:sched" }
func (k Keys) legacyDead() string     { return k.Namespace + ":{d0}:dead" }
func (k Keys) legacyDeadBytes() string {
	return k.Namespace + ":{d0}:dead:bytes"
}
func (k Keys) legacyDisabled() string { return k.Namespace + ":{d0}:disabled" }
func (k Keys) legacyHealth(hookID int64) string {
	return k.Namespace + ":{d0}:hook:" + strconv.FormatInt(hookID, 10) + ":health"
}
func (k Keys) legacyHookLog(hookID int64) string {
	return k.Namespace + ":{d0}:hook:" + strconv.FormatInt(hookID, 10) + ":log"
}

// Hooks managed through the API live under one hash tag, {h0}, so the
// scripts that change them touch a single Redis Cluster slot:
//
//	<ns>:{h0}:hooks              hash, hook id → JSON (secrets sealed)
//	<ns>:{h0}:hooks:version      counter, bumped on every change
//	<ns>:{h0}:hooks:seq          counter, the last hook id handed out
//	<ns>:{h0}:hooks:<kind>:<path> set of the hook ids of one project or
//	                             group (path lower-cased)
//	<ns>:{h0}:ns:seq             counter, the last project/group id handed out
//	<ns>:{h0}:ns:by_path         hash, "<kind>:<lower path>" → numeric id
//	<ns>:{h0}:ns:by_id           hash, "<kind>:<id>" → full path
//	<ns>:{h0}:ns:scope:<scope>   counter, the ids handed out for a token
//	                             scope's writes (scope lower-cased)

// Hooks is the hash of API-managed hooks.
func (k Keys) Hooks() string { return k.Namespace + ":{h0}:hooks" }

// HooksVersion is bumped on every change to the hooks.
func (k Keys) HooksVersion() string { return k.Namespace + ":{h0}:hooks:version" }

// HookSeq hands out hook ids.
func (k Keys) HookSeq() string { return k.Namespace + ":{h0}:hooks:seq" }

// HookScope is the set of hook ids of one project or group.
func (k Keys) HookScope(kind webhook.Kind, path string) string {
	return k.Namespace + ":{h0}:hooks:" + string(kind) + ":" + strings.ToLower(path)
}

// NamespaceSeq hands out project and group ids.
func (k Keys) NamespaceSeq() string { return k.Namespace + ":{h0}:ns:seq" }

// NamespaceByPath maps "<kind>:<lower path>" to a numeric id.
func (k Keys) NamespaceByPath() string { return k.Namespace + ":{h0}:ns:by_path" }

// NamespaceByID maps "<kind>:<id>" to a full path.
func (k Keys) NamespaceByID() string { return k.Namespace + ":{h0}:ns:by_id" }

// NamespaceScopeCount counts the project and group ids handed out for the
// writes of a token scope.
func (k Keys) NamespaceScopeCount(scope string) string {
	return k.Namespace + ":{h0}:ns:scope:" + strings.ToLower(scope)
}

// Chat integrations (Slack, Mattermost, Discord, Microsoft Teams, Google
// Chat, Webex Teams) live beside the hooks, under the same hash tag:
//
//	<ns>:{h0}:integrations      hash, "<kind>:<lower path>:<service>" → JSON
//	                            (webhook sealed)
//	<ns>:{h0}:integrations:seq  their API ids, as GitLab's (its own counter)
//
// Each also has an id from the hook id counter (its hook_id; the API id
// of one saved before the integrations had a counter), under which the
// engine delivers to it, so a delivery's hook id names either a hook or an
// integration; every change bumps the hooks version, so runtimes reload
// both.

// Integrations is the hash of chat integrations.
func (k Keys) Integrations() string { return k.Namespace + ":{h0}:integrations" }

// Ordered hooks (ordered.go) keep their queue in their hook slot, beside
// their health, so a settle records both in one script:
//
//	{hs<j>.<n>}:ordready          sorted set, hook id → when its head may go (ms)
//	{hs<j>.<n>}:hook:<id>:ord     sorted set, order keys (all scored 0: by key)
//	{hs<j>.<n>}:hook:<id>:ordd    hash, order key → "<shard>|<delivery>"
//	{hs<j>.<n>}:hook:<id>:ordlease the token of the process sending the head
//	{hs<j>.<n>}:hook:<id>:ordst   hash, the head's state (blocked since,
//	                              attempts, last status, next attempt) and
//	                              the last key released
//
// The fan-out puts an ordered hook's deliveries in its shard's inbox,
// {q<i>.<n>}:ordin, from which they move to their hooks' queues; each
// process publishes the capture time below which it holds no event that
// is not yet in Redis in {d0}:ordmarks.

// OrderedReady is hook slot j's sorted set of ordered hooks with a queue,
// scored by when their head may go.
func (k Keys) OrderedReady(j int) string { return k.hookSlot(j) + "ordready" }

// orderedHookPrefix is what the ordered keys of a hook of slot j start
// with, before the hook id (scripts build them from it).
func (k Keys) orderedHookPrefix(j int) string { return k.hookSlot(j) + "hook:" }

// Ordered is the queue of ordered hook hookID: its order keys.
func (k Keys) Ordered(hookID int64) string { return k.orderedKey(hookID, "ord") }

// OrderedDocs holds the deliveries of the queue of hookID by order key.
func (k Keys) OrderedDocs(hookID int64) string { return k.orderedKey(hookID, "ordd") }

// OrderedLease names the process sending the head of hookID's queue.
func (k Keys) OrderedLease(hookID int64) string { return k.orderedKey(hookID, "ordlease") }

// OrderedState is the state of the head of hookID's queue.
func (k Keys) OrderedState(hookID int64) string { return k.orderedKey(hookID, "ordst") }

func (k Keys) orderedKey(hookID int64, name string) string {
	return k.orderedHookPrefix(hookSlotOf(hookID)) + strconv.FormatInt(hookID, 10) + ":" + name
}

// OrderedInbox is shard i's stream of the deliveries of ordered hooks its
// fan-out made, waiting to move to their hooks' queues.
func (k Keys) OrderedInbox(i int) string { return k.shard(i) + "ordin" }

// CaptureMarks holds, per process, the capture time (ms) below which the
// process holds no event that is not in Redis yet, and when the mark
// expires: "<mark>:<expires>".
func (k Keys) CaptureMarks() string { return k.Namespace + ":{d0}:ordmarks" }

// Replays (replays.go) live beside the operator's other controls:
//
//	{d0}:replays            sorted set, replay id → when it was made (ms)
//	{d0}:replays:seq        counter, the last replay id
//	{d0}:replays:lock       the token of the process feeding replays
//	{d0}:replay:<id>        hash: spec, state, total, cursor, fed, gone, times
//	{d0}:replay:<id>:items  list of what to send again, in order

// Replays indexes the replays by id.
func (k Keys) Replays() string { return k.Namespace + ":{d0}:replays" }

// ReplaySeq hands out replay ids.
func (k Keys) ReplaySeq() string { return k.Namespace + ":{d0}:replays:seq" }

// ReplayLock names the process that feeds replays.
func (k Keys) ReplayLock() string { return k.Namespace + ":{d0}:replays:lock" }

// Replay is a replay's record.
func (k Keys) Replay(id int64) string {
	return k.Namespace + ":{d0}:replay:" + strconv.FormatInt(id, 10)
}

// ReplayItems is the list of what a replay sends again.
func (k Keys) ReplayItems(id int64) string { return k.Replay(id) + ":items" }

// The operator's alerts (alerts.go) keep their counts and gates beside
// the other controls:
//
//	{d0}:alerts:dead              set of hooks with dead letters not yet alerted
//	{d0}:alerts:dead:<hook>       hash: count, r:<reason> counts, first event, since
//	{d0}:alerts:gate:<name>       set while an alert of that name waits out its interval

// AlertsDeadPending is the set of hooks with dead letters counted, not yet
// in an alert.
func (k Keys) AlertsDeadPending() string { return k.Namespace + ":{d0}:alerts:dead" }

// AlertsDead counts a hook's dead letters for its next alert.
func (k Keys) AlertsDead(hookID int64) string {
	return k.AlertsDeadPending() + ":" + strconv.FormatInt(hookID, 10)
}

// AlertGate is set while an alert of name waits out its interval.
func (k Keys) AlertGate(name string) string { return k.Namespace + ":{d0}:alerts:gate:" + name }

// IntegrationSeq hands out the integrations' API ids.
func (k Keys) IntegrationSeq() string { return k.Namespace + ":{h0}:integrations:seq" }
