package redisstore

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

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
