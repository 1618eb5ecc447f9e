package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// EventMsg is an Event read from shard Shard's stream, with its stream entry
// ID. The event's Body is not read (fan-out chooses hooks by the other
// fields); FanOut's Payloads fetches it when needed. Err is set when the
// entry could not be decoded; such an entry is poison.
type EventMsg struct {
	Shard    int
	StreamID string
	Event    webhook.Event
	Err      error
}

// DeliveryMsg is a Delivery read from shard Shard's stream, its payload
// filled in. Err is set for an entry that could not be decoded.
type DeliveryMsg struct {
	Shard    int
	StreamID string
	Delivery webhook.Delivery
	Err      error
}

// eventValues is an event's entry: its metadata; the body is in its
// payload key.
func eventValues(e *webhook.Event) []any {
	v := []any{
		"id", e.ID, "trigger", e.Trigger, "project", e.Project, "ns", e.Namespace,
		"ref", e.Ref, "chain", e.Chain, "at", e.At.UnixMilli(),
	}
	// The trace context only when there is one: most events have none.
	if e.Trace.Parent != "" {
		v = append(v, "tp", e.Trace.Parent)
		if e.Trace.State != "" {
			v = append(v, "ts", e.Trace.State)
		}
	}
	return v
}

// decodeEvent reads an events entry. Entries of the layout before shards
// carry their body; it is kept (legacy.go moves them).
func decodeEvent(shard int, m redis.XMessage) EventMsg {
	v := fields(m.Values)
	at, err := v.int("at")
	msg := EventMsg{Shard: shard, StreamID: m.ID, Event: webhook.Event{
		ID: v.str("id"), Trigger: v.str("trigger"), Project: v.str("project"),
		Namespace: v.str("ns"), Ref: v.str("ref"), Chain: v.str("chain"),
		At: time.UnixMilli(at), Trace: webhook.TraceContext{Parent: v.str("tp"), State: v.str("ts")},
	}}
	if b, ok := m.Values["body"].(string); ok {
		msg.Event.Body = []byte(b)
	}
	if msg.Event.Chain == "" {
		msg.Event.Chain = msg.Event.ID
	}
	if err == nil && (msg.Event.ID == "" || msg.Event.Trigger == "") {
		err = fmt.Errorf("missing id or trigger")
	}
	if err != nil {
		msg.Err = fmt.Errorf("decoding event entry %s: %w", m.ID, err)
	}
	return msg
}

// EncodeDelivery returns the delivery's stored form: a JSON object written
// by hand, because encoding/json would re-validate and compact the body
// (already valid JSON) on every encode. The event's trace context follows
// "at" only when there is one ("tp", then "ts" if not empty), then "r":1
// when the body is a rendered template (a replay). A delivery of the
// event's shared payload ends with "p":1, any other with its body.
func EncodeDelivery(d *webhook.Delivery) string {
	body := []byte(d.Body)
	if len(body) == 0 {
		body = []byte("null")
	}
	if d.Shared {
		body = nil
	}
	b := appendDeliveryHead(make([]byte, 0, len(body)+len(d.EventID)+len(d.Trigger)+len(d.Chain)+len(d.Trace.Parent)+
		len(d.Trace.State)+112), d)
	if d.Shared {
		return string(append(b, sharedTail...))
	}
	b = append(b, bodyKey...)
	b = append(b, body...)
	b = append(b, '}')
	return string(b)
}

// deliveryHead is a delivery's stored form without its end: the end says
// whether the body is the shared payload (sharedTail) or its own (bodyKey,
// the body, '}'), which lua/capture.lua and lua/fan_out.lua decide.
func deliveryHead(d *webhook.Delivery) string {
	return string(appendDeliveryHead(make([]byte, 0, len(d.EventID)+len(d.Trigger)+len(d.Chain)+len(d.Trace.Parent)+
		len(d.Trace.State)+112), d))
}

// appendDeliveryHead appends the members of a delivery's stored form
// before its body.
func appendDeliveryHead(b []byte, d *webhook.Delivery) []byte {
	b = append(b, `{"ev":`...)
	b = appendJSONString(b, d.EventID)
	b = append(b, `,"hook":`...)
	b = strconv.AppendInt(b, d.HookID, 10)
	b = append(b, `,"trigger":`...)
	b = appendJSONString(b, d.Trigger)
	b = append(b, `,"chain":`...)
	b = appendJSONString(b, d.Chain)
	b = append(b, `,"att":`...)
	b = strconv.AppendInt(b, int64(d.Attempt), 10)
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, d.At.UnixMilli(), 10)
	if d.Trace.Parent != "" {
		b = append(b, traceParentKey...)
		b = appendJSONString(b, d.Trace.Parent)
		if d.Trace.State != "" {
			b = append(b, traceStateKey...)
			b = appendJSONString(b, d.Trace.State)
		}
	}
	if d.Rendered {
		b = append(b, renderedMember...)
	}
	return b
}

// The optional members of the trace context, between "at" and the tail.
const (
	traceParentKey = `,"tp":`
	traceStateKey  = `,"ts":`
)

// sharedTail ends the stored form of a delivery of the shared payload.
const sharedTail = `,"p":1}`

// renderedMember marks a delivery whose body is a rendered template.
const renderedMember = `,"r":1`

// bodyKey introduces the body, Encode's last member. A JSON string cannot
// hold it unescaped, so its first occurrence is the member's key.
const bodyKey = `,"body":`

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // the rare string that needs escaping
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// DecodeDelivery parses a delivery's stored form. Encode's layout is read
// member by member (ownForm), without scanning the body, which was
// validated at capture; anything else (such as the earlier layout, with
// the body before "att", or a string with escapes) goes through
// encoding/json. Documents written before deliveries carried a trace
// context have none; a version before that reads a document with one
// through encoding/json, which skips "tp" and "ts".
func DecodeDelivery(s string) (webhook.Delivery, error) {
	out, ok := ownForm(s)
	if !ok {
		var d storedDelivery
		if i := strings.Index(s, bodyKey); i > 0 && strings.HasPrefix(s, `{"ev":`) && strings.Contains(s[:i], `,"att":`) &&
			strings.HasSuffix(s, "}") {
			if err := json.Unmarshal([]byte(s[:i]+"}"), &d); err != nil {
				return webhook.Delivery{}, fmt.Errorf("decoding delivery: %w", err)
			}
			d.Body = json.RawMessage(s[i+len(bodyKey) : len(s)-1])
		} else if err := json.Unmarshal([]byte(s), &d); err != nil {
			return webhook.Delivery{}, fmt.Errorf("decoding delivery: %w", err)
		}
		out = webhook.Delivery{EventID: d.EventID, HookID: d.HookID, Trigger: d.Trigger, Chain: d.Chain,
			At: time.UnixMilli(d.AtMs), Body: d.Body, Attempt: d.Attempt, Shared: d.Shared == 1, Rendered: d.Render == 1,
			Trace: webhook.TraceContext{Parent: d.TraceParent, State: d.TraceState}}
	}
	if out.EventID == "" || out.HookID == 0 {
		return out, fmt.Errorf("decoding delivery: missing event or hook")
	}
	return out, nil
}

// ownForm reads a delivery in EncodeDelivery's layout, with strings that
// need no unescaping; ok is false for anything else. Its strings share
// s's memory.
func ownForm(s string) (d webhook.Delivery, ok bool) {
	var at, att int64
	rest := s
	if d.EventID, rest, ok = cutMember(rest, `{"ev":`, cutPlainString); !ok {
		return d, false
	}
	if d.HookID, rest, ok = cutMember(rest, `,"hook":`, cutInt); !ok {
		return d, false
	}
	if d.Trigger, rest, ok = cutMember(rest, `,"trigger":`, cutPlainString); !ok {
		return d, false
	}
	if d.Chain, rest, ok = cutMember(rest, `,"chain":`, cutPlainString); !ok {
		return d, false
	}
	if att, rest, ok = cutMember(rest, `,"att":`, cutInt); !ok || att != int64(int(att)) {
		return d, false
	}
	if at, rest, ok = cutMember(rest, `,"at":`, cutInt); !ok {
		return d, false
	}
	d.Attempt, d.At = int(att), time.UnixMilli(at)
	if strings.HasPrefix(rest, traceParentKey) {
		if d.Trace.Parent, rest, ok = cutMember(rest, traceParentKey, cutPlainString); !ok {
			return d, false
		}
		if strings.HasPrefix(rest, traceStateKey) {
			if d.Trace.State, rest, ok = cutMember(rest, traceStateKey, cutPlainString); !ok {
				return d, false
			}
		}
	}
	rest, d.Rendered = strings.CutPrefix(rest, renderedMember)
	switch {
	case rest == sharedTail:
		d.Shared = true
	case strings.HasPrefix(rest, bodyKey) && strings.HasSuffix(rest, "}") && len(rest) > len(bodyKey)+1:
		d.Body = json.RawMessage(rest[len(bodyKey) : len(rest)-1])
	default:
		return d, false
	}
	return d, true
}

// cutMember cuts key, then a value read by cut, off the front of s.
func cutMember[T any](s, key string, cut func(string) (T, string, bool)) (T, string, bool) {
	rest, ok := strings.CutPrefix(s, key)
	if !ok {
		var zero T
		return zero, s, false
	}
	return cut(rest)
}

// cutPlainString cuts a JSON string without escapes off the front of s.
func cutPlainString(s string) (string, string, bool) {
	if len(s) == 0 || s[0] != '"' {
		return "", s, false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], s[i+1:], true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", s, false // escapes, control or non-ASCII bytes: encoding/json decides
		}
	}
	return "", s, false
}

// cutInt cuts a JSON integer off the front of s.
func cutInt(s string) (int64, string, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	return n, s[i:], err == nil
}

// storedDelivery is a delivery's stored form as encoding/json reads it.
type storedDelivery struct {
	EventID string          `json:"ev"`
	HookID  int64           `json:"hook"`
	Trigger string          `json:"trigger"`
	Chain   string          `json:"chain"`
	Body    json.RawMessage `json:"body"`
	Attempt int             `json:"att"`
	AtMs    int64           `json:"at"`
	Shared  int             `json:"p"`
	Render  int             `json:"r"`
	// TraceParent and TraceState are the trace context (optional).
	TraceParent string `json:"tp"`
	TraceState  string `json:"ts"`
}

func decodeDelivery(shard int, m redis.XMessage) DeliveryMsg {
	d, err := DecodeDelivery(fields(m.Values).str("d"))
	msg := DeliveryMsg{Shard: shard, StreamID: m.ID, Delivery: d}
	if err != nil {
		msg.Err = fmt.Errorf("entry %s: %w", m.ID, err)
	}
	return msg
}

type fields map[string]any

func (f fields) str(k string) string {
	s, _ := f[k].(string)
	return s
}

func (f fields) int(k string) (int64, error) {
	s, ok := f[k].(string)
	if !ok {
		return 0, fmt.Errorf("missing field %q", k)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", k, err)
	}
	return n, nil
}

// Stream entries as a script returns them (the reply of XREADGROUP or
// XRANGE inside Lua): {id, {field, value, ...}} each. They are read into
// the store's messages directly, without go-redis's map per entry.

// deliveryEntries reads a script's list of ready-stream entries of a shard.
func deliveryEntries(shard int, v any) ([]DeliveryMsg, error) {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("stream entries: unexpected reply %T", v)
	}
	out := make([]DeliveryMsg, 0, len(list))
	for _, e := range list {
		id, doc, err := entryField(e, "d")
		if err != nil {
			return out, err
		}
		out = append(out, deliveryMsg(shard, id, doc))
	}
	return out, nil
}

// entryField reads one entry {id, {field, value, ...}} and returns its ID
// and the value of field ("" if it has none).
func entryField(e any, field string) (id, value string, err error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return "", "", fmt.Errorf("stream entry: unexpected reply %v", e)
	}
	if id, ok = pair[0].(string); !ok {
		return "", "", fmt.Errorf("stream entry: unexpected id %v", pair[0])
	}
	fields, _ := pair[1].([]any) // nil: an entry deleted while pending
	for i := 0; i+1 < len(fields); i += 2 {
		if k, _ := fields[i].(string); k == field {
			value, _ = fields[i+1].(string)
			return id, value, nil
		}
	}
	return id, "", nil
}

// deliveryMsg decodes the document doc of ready entry id.
func deliveryMsg(shard int, id, doc string) DeliveryMsg {
	d, err := DecodeDelivery(doc)
	msg := DeliveryMsg{Shard: shard, StreamID: id, Delivery: d}
	if err != nil {
		msg.Err = fmt.Errorf("entry %s: %w", id, err)
	}
	return msg
}

// eventEntry reads one events entry {id, {field, value, ...}} of a shard.
func eventEntry(shard int, e any) (EventMsg, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return EventMsg{}, fmt.Errorf("stream entry: unexpected reply %v", e)
	}
	id, ok := pair[0].(string)
	if !ok {
		return EventMsg{}, fmt.Errorf("stream entry: unexpected id %v", pair[0])
	}
	fields, _ := pair[1].([]any)
	values := make(map[string]any, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			values[k] = fields[i+1]
		}
	}
	return decodeEvent(shard, redis.XMessage{ID: id, Values: values}), nil
}
