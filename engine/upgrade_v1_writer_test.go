package engine

// A frozen copy of what the v1 engine (main at 026c1cf) writes to Redis,
// for the upgrade test (upgrade_v1_test.go). It talks to Redis with raw
// go-redis commands and copies the byte layouts; it must never call
// redisstore, whose layout is the one that changes. Each method names the
// v1 code it mirrors. Do not "fix" it to follow the current code: it is
// what Redis holds on the day of an upgrade.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// v1Writer writes the v1 layout of one namespace.
type v1Writer struct {
	t  *testing.T
	c  *redis.Client
	ns string
}

// v1 key names (redisstore/keys.go): every queue on the {e0} or {d0} slot.
func (w *v1Writer) events() string { return w.ns + ":{e0}:events" }
func (w *v1Writer) ready() string  { return w.ns + ":{d0}:ready" }
func (w *v1Writer) sched() string  { return w.ns + ":{d0}:sched" }
func (w *v1Writer) dead() string   { return w.ns + ":{d0}:dead" }
func (w *v1Writer) deadBytes() string {
	return w.ns + ":{d0}:dead:bytes"
}
func (w *v1Writer) disabled() string { return w.ns + ":{d0}:disabled" }
func (w *v1Writer) health(hook int64) string {
	return w.ns + ":{d0}:hook:" + strconv.FormatInt(hook, 10) + ":health"
}
func (w *v1Writer) hookLog(hook int64) string {
	return w.ns + ":{d0}:hook:" + strconv.FormatInt(hook, 10) + ":log"
}
func (w *v1Writer) chain(c string) string { return w.ns + ":{d0}:chain:" + c }

// v1 consumer group names (redisstore/keys.go).
const (
	v1GroupFanout  = "fanout"
	v1GroupDeliver = "deliver"
)

// v1Event is an event as v1 captured it (webhook.Event).
type v1Event struct {
	ID, Trigger, Project, Namespace, Ref, Chain string
	At                                          time.Time
	Body                                        []byte
}

// v1Delivery is one (event, hook) pair as v1 queued it (webhook.Delivery).
type v1Delivery struct {
	EventID string
	HookID  int64
	Trigger string
	Chain   string
	At      time.Time
	Body    []byte
	Attempt int
}

func (w *v1Writer) must(err error, what string) {
	w.t.Helper()
	if err != nil && err != redis.Nil {
		w.t.Fatalf("v1 writer: %s: %v", what, err)
	}
}

// createGroups is Store.EnsureGroups: both groups at "0", streams made.
func (w *v1Writer) createGroups(ctx context.Context) {
	w.must(w.c.XGroupCreateMkStream(ctx, w.events(), v1GroupFanout, "0").Err(), "creating the fan-out group")
	w.must(w.c.XGroupCreateMkStream(ctx, w.ready(), v1GroupDeliver, "0").Err(), "creating the delivery group")
}

// addEvent is Store.AddEvent (records.go eventValues): one entry per event,
// "at" in Unix ms, the body as it was captured.
func (w *v1Writer) addEvent(ctx context.Context, e *v1Event) string {
	id, err := w.c.XAdd(ctx, &redis.XAddArgs{Stream: w.events(), Values: []any{
		"id", e.ID, "trigger", e.Trigger, "project", e.Project, "ns", e.Namespace,
		"ref", e.Ref, "chain", e.Chain, "at", e.At.UnixMilli(), "body", e.Body,
	}}).Result()
	w.must(err, "adding event "+e.ID)
	return id
}

// addReady is the first step of Store.FanOut (and the mover's XADD): the
// delivery document in field "d".
func (w *v1Writer) addReady(ctx context.Context, d *v1Delivery) string {
	id, err := w.c.XAdd(ctx, &redis.XAddArgs{Stream: w.ready(), Values: []any{"d", v1EncodeDelivery(d)}}).Result()
	w.must(err, "queueing a delivery")
	return id
}

// readAndCrash is a v1 consumer that takes up to n new entries
// (XREADGROUP ">") and dies before settling them: they stay pending under
// its name.
func (w *v1Writer) readAndCrash(ctx context.Context, stream, group, consumer string, n int64) []string {
	res, err := w.c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
		Streams: []string{stream, ">"}, Count: n, Block: -1}).Result()
	w.must(err, "reading as "+consumer)
	var ids []string
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	if int64(len(ids)) != n {
		w.t.Fatalf("v1 writer: %s read %d entries of %s, want %d", consumer, len(ids), stream, n)
	}
	return ids
}

// schedule is the retry (settleScript, next attempt) or a deferral
// (deferScript): the document as member, the due time in ms as score.
func (w *v1Writer) schedule(ctx context.Context, d *v1Delivery, due time.Time) {
	w.must(w.c.ZAdd(ctx, w.sched(), redis.Z{Score: float64(due.UnixMilli()), Member: v1EncodeDelivery(d)}).Err(),
		"scheduling a delivery")
}

// deadLetter is settleScript's dead(): XADD d, reason, at, n (the bytes of
// document and reason), and the same n added to the dead-bytes counter,
// which is reset when the stream was empty.
func (w *v1Writer) deadLetter(ctx context.Context, d *v1Delivery, reason string, at time.Time) string {
	doc := v1EncodeDelivery(d)
	n := len(doc) + len(reason)
	if l, _ := w.c.XLen(ctx, w.dead()).Result(); l == 0 {
		w.must(w.c.Del(ctx, w.deadBytes()).Err(), "resetting dead bytes")
	}
	id, err := w.c.XAdd(ctx, &redis.XAddArgs{Stream: w.dead(), Values: []any{
		"d", doc, "reason", reason, "at", at.UnixMilli(), "n", n}}).Result()
	w.must(err, "adding a dead letter")
	w.must(w.c.IncrBy(ctx, w.deadBytes(), int64(n)).Err(), "counting dead bytes")
	return id
}

// registerChain is chainScript for an event that was fanned out: each hook
// it triggered, mapped to the event, the chain kept for the window.
func (w *v1Writer) registerChain(ctx context.Context, chain, eventID string, hooks []int64, window time.Duration) {
	args := make([]any, 0, 2*len(hooks))
	for _, h := range hooks {
		args = append(args, strconv.FormatInt(h, 10), eventID)
	}
	w.must(w.c.HSet(ctx, w.chain(chain), args...).Err(), "registering chain "+chain)
	w.must(w.c.PExpire(ctx, w.chain(chain), window).Err(), "expiring chain "+chain)
}

// failedBelowThreshold is settleScript after failures that did not
// disable the hook.
func (w *v1Writer) failedBelowThreshold(ctx context.Context, hook int64, fails int, lastFail time.Time, status string) {
	w.must(w.c.HSet(ctx, w.health(hook), "fails", fails, "last_fail", lastFail.UnixMilli(), "last_status", status).Err(),
		"writing health")
}

// cooling is settleScript at the threshold-th failure: the hook disabled
// until a time, in its health hash and in the disabled-hooks zset.
func (w *v1Writer) cooling(ctx context.Context, hook int64, fails int, lastFail, until time.Time, status string) {
	w.must(w.c.HSet(ctx, w.health(hook), "fails", fails, "last_fail", lastFail.UnixMilli(), "last_status", status,
		"disabled_until", until.UnixMilli()).Err(), "writing health")
	w.must(w.c.ZAdd(ctx, w.disabled(), redis.Z{Score: float64(until.UnixMilli()), Member: hook}).Err(),
		"listing a disabled hook")
}

// v1LogEntry is webhook.LogEntry's JSON as v1 stored it (field "l").
type v1LogEntry struct {
	HookID          int64             `json:"hook"`
	EventID         string            `json:"event"`
	Chain           string            `json:"chain,omitempty"`
	Trigger         string            `json:"trigger"`
	Kind            string            `json:"kind"`
	URL             string            `json:"url"`
	RequestHeaders  map[string]string `json:"req_headers"`
	RequestData     json.RawMessage   `json:"req_data"`
	Oversize        bool              `json:"oversize,omitempty"`
	Rendered        bool              `json:"rendered,omitempty"`
	ResponseHeaders map[string]string `json:"resp_headers"`
	ResponseBody    string            `json:"resp_body"`
	ResponseStatus  string            `json:"status"`
	Duration        float64           `json:"duration"`
	InternalError   string            `json:"error,omitempty"`
	CreatedAt       time.Time         `json:"at"`
}

// appendLog is log.go's appendLog script, command by command: an entry
// "<ms>-*" from the writer's clock with fields s (status) and l (the
// entry's JSON), trimmed by age (MINID) and length, the key's expiry
// refreshed to the retention. It returns the entry's stream ID.
func (w *v1Writer) appendLog(ctx context.Context, e *v1LogEntry, retention time.Duration, maxEntries int64) string {
	l := v1EncodeLogEntry(w.t, e)
	key := w.hookLog(e.HookID)
	ms := e.CreatedAt.UnixMilli()
	id, err := w.c.XAdd(ctx, &redis.XAddArgs{Stream: key, MinID: strconv.FormatInt(max(ms-retention.Milliseconds(), 0), 10),
		ID: strconv.FormatInt(ms, 10) + "-*", Values: []any{"s", e.ResponseStatus, "l", l}}).Result()
	w.must(err, "appending to the log of hook "+strconv.FormatInt(e.HookID, 10))
	w.must(w.c.XTrimMaxLen(ctx, key, maxEntries).Err(), "trimming a log")
	w.must(w.c.PExpire(ctx, key, retention).Err(), "expiring a log")
	return id
}

// v1EncodeLogEntry is log.go's encodeLogEntry: json.Marshal of the entry
// with the request data spliced in as it is (not compacted, no HTML
// escaping), in the place of a placeholder.
func v1EncodeLogEntry(t *testing.T, e *v1LogEntry) []byte {
	data := e.RequestData
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	c := *e
	c.RequestData = json.RawMessage("0")
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatalf("v1 writer: encoding a log entry: %v", err)
	}
	const placeholder = `"req_data":0`
	i := bytes.Index(b, []byte(placeholder)) + len(placeholder) - 1
	out := make([]byte, 0, len(b)+len(data))
	return append(append(append(out, b[:i]...), data...), b[i+1:]...)
}

// v1EncodeDelivery is redisstore.EncodeDelivery as of 026c1cf, byte for
// byte: a JSON object written by hand, the body last.
func v1EncodeDelivery(d *v1Delivery) string {
	body := d.Body
	if len(body) == 0 {
		body = []byte("null")
	}
	b := make([]byte, 0, len(body)+len(d.EventID)+len(d.Trigger)+len(d.Chain)+96)
	b = append(b, `{"ev":`...)
	b = v1AppendJSONString(b, d.EventID)
	b = append(b, `,"hook":`...)
	b = strconv.AppendInt(b, d.HookID, 10)
	b = append(b, `,"trigger":`...)
	b = v1AppendJSONString(b, d.Trigger)
	b = append(b, `,"chain":`...)
	b = v1AppendJSONString(b, d.Chain)
	b = append(b, `,"att":`...)
	b = strconv.AppendInt(b, int64(d.Attempt), 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, d.At.UnixMilli(), 10)
	b = append(b, `,"body":`...)
	b = append(b, body...)
	b = append(b, '}')
	return string(b)
}

func v1AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// v1IdempotencyKey is the Idempotency-Key v1 sent (webhook.IdempotencyKey):
// a UUIDv5 of "<event id>:<hook id>". Receivers dedupe on it, so it must
// not change across the upgrade.
func v1IdempotencyKey(eventID string, hookID int64) string {
	ns := uuid.MustParse("3f0f7c5e-8a4f-4e57-9a43-6f1f8f0b2c11")
	return uuid.NewSHA1(ns, fmt.Appendf(nil, "%s:%d", eventID, hookID)).String()
}
