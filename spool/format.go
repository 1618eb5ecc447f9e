package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A spool file is a sequence of records, each
//
//	uint32 big-endian  length of the payload
//	uint32 big-endian  CRC-32C of the payload
//	payload            the event as JSON (record)
//
// appended and fsynced one at a time. A record cut short by a crash, or
// one whose checksum does not match, ends the file: it and anything after
// it are cut off when the spool is opened.

const headerSize = 8

// maxRecord bounds a record's length, so a corrupt header cannot make us
// allocate gigabytes: 64 MiB is more than max_payload's default (25 MiB)
// allows, base64-free.
const maxRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is the stored form of an event: a stable format of its own, so a
// change of webhook.Event cannot misread files written before it.
type record struct {
	ID        string          `json:"id"`
	Trigger   string          `json:"trigger"`
	Project   string          `json:"project,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	Ref       string          `json:"ref,omitempty"`
	Chain     string          `json:"chain"`
	At        time.Time       `json:"at"`
	Body      json.RawMessage `json:"body"`
	// The trace context the event was queued under, if any.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// encode returns the record of ev, header included.
func encode(ev *webhook.Event) ([]byte, error) {
	payload, err := json.Marshal(record{ID: ev.ID, Trigger: ev.Trigger, Project: ev.Project, Namespace: ev.Namespace,
		Ref: ev.Ref, Chain: ev.Chain, At: ev.At, Body: ev.Body, TraceParent: ev.Trace.Parent, TraceState: ev.Trace.State})
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", ev.ID, err)
	}
	if len(payload) > maxRecord {
		return nil, fmt.Errorf("event %s is too large to spool (%d bytes)", ev.ID, len(payload))
	}
	buf := make([]byte, headerSize, headerSize+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(payload, castagnoli))
	return append(buf, payload...), nil
}

// errTorn marks the end of the readable records: a record cut short or
// failing its checksum.
var errTorn = errors.New("torn or corrupt record")

// readRecord reads the record at off from r; it returns the event and the
// record's total length, io.EOF at the end of the data, or errTorn.
func readRecord(r io.ReaderAt, off, end int64) (*webhook.Event, int64, error) {
	if off == end {
		return nil, 0, io.EOF
	}
	if end-off < headerSize {
		return nil, 0, errTorn
	}
	var hdr [headerSize]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, 0, fmt.Errorf("reading spool record header at %d: %w", off, err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n > maxRecord || end-off-headerSize < n {
		return nil, 0, errTorn
	}
	payload := make([]byte, n)
	if _, err := r.ReadAt(payload, off+headerSize); err != nil {
		return nil, 0, fmt.Errorf("reading spool record at %d: %w", off, err)
	}
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, 0, errTorn
	}
	var rec record
	if err := json.Unmarshal(payload, &rec); err != nil {
		return nil, 0, errTorn
	}
	ev := &webhook.Event{ID: rec.ID, Trigger: rec.Trigger, Project: rec.Project, Namespace: rec.Namespace,
		Ref: rec.Ref, Chain: rec.Chain, At: rec.At, Body: []byte(rec.Body),
		Trace: webhook.TraceContext{Parent: rec.TraceParent, State: rec.TraceState}}
	return ev, headerSize + n, nil
}
