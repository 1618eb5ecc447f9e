package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
	"github.com/redis/go-redis/v9"
)

func newLogStore(t *testing.T) *Store {
	t.Helper()
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "logtest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func logEntry(hook int64, status string, at time.Time) *webhook.LogEntry {
	return &webhook.LogEntry{HookID: hook, EventID: "ev", Trigger: "push", Kind: "delivery", URL: "http://x/",
		RequestData: json.RawMessage(`{"a":1}`), ResponseStatus: status, CreatedAt: at}
}

func TestLogRetentionAndCap(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	lim := LogLimits{Retention: time.Hour, MaxEntries: 5}
	t0 := time.Now().Add(-3 * time.Hour)
	var ids []int64
	for i := range 3 {
		id, err := s.Log().Append(ctx, logEntry(1, "200", t0.Add(time.Duration(i)*time.Millisecond)), lim)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] != t0.UnixMilli()*1000 || ids[1] <= ids[0] || ids[2] <= ids[1] {
		t.Fatalf("ids %v do not follow the entries' times (t0 %d)", ids, t0.UnixMilli())
	}
	// Two hours later the first three are past the retention: the log
	// lists only the new one, and the janitor trims them.
	t2 := t0.Add(2 * time.Hour)
	if _, err := s.Log().Append(ctx, logEntry(1, "500", t2), lim); err != nil {
		t.Fatal(err)
	}
	if refs, err := s.Log().Refs(ctx, 1, t2.Add(-lim.Retention)); err != nil || len(refs) != 1 || refs[0].Status != "500" {
		t.Fatalf("refs within the retention = %+v, %v; want the new one", refs, err)
	}
	if n, err := s.Log().Trim(ctx, lim, t2); err != nil || n != 3 {
		t.Fatalf("Trim = %d, %v; want the 3 entries older than the retention", n, err)
	}
	if n := s.c.rdb.XLen(ctx, s.c.keys.HookLog(0, 1)).Val(); n != 1 {
		t.Fatalf("after retention: %d entries, want 1", n)
	}
	// A log that stopped growing is trimmed by the janitor, and goes.
	if n, err := s.Log().Trim(ctx, lim, t0.Add(4*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Trim = %d, %v; want the one entry older than the retention", n, err)
	}
	if n := s.c.rdb.Exists(ctx, s.c.keys.HookLog(0, 1), s.c.keys.Logs(0)).Val(); n != 0 {
		t.Fatalf("an emptied log is kept (%d keys)", n)
	}
	if n := s.c.rdb.HLen(ctx, s.c.keys.LogTails(0)).Val(); n != 0 {
		t.Fatalf("an emptied log is still in the tails (%d fields)", n)
	}
	// The cap keeps the newest entries.
	now := time.Now()
	for i := range 8 {
		if _, err := s.Log().Append(ctx, logEntry(1, fmt.Sprint(200+i), now.Add(time.Duration(i)*time.Millisecond)), lim); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := s.Log().Refs(ctx, 1, now.Add(-time.Hour))
	if err != nil || len(refs) != 5 || refs[0].Status != "207" || refs[4].Status != "203" {
		t.Fatalf("refs = %+v, %v; want the 5 newest, newest first", refs, err)
	}
	es, err := s.Log().Entries(ctx, 1, refs[0].ID, 42, refs[1].ID)
	if err != nil || len(es) != 2 || es[0].ID != refs[0].ID || es[0].ResponseStatus != "207" || string(es[1].RequestData) != `{"a":1}` {
		t.Fatalf("entries = %+v, %v", es, err)
	}
	// since filters out older entries even before a trim.
	if refs, _ := s.Log().Refs(ctx, 1, now.Add(5*time.Millisecond)); len(refs) != 3 {
		t.Fatalf("since: %d refs, want 3", len(refs))
	}
	if refs, err := s.Log().Refs(ctx, 99, time.Time{}); err != nil || len(refs) != 0 {
		t.Fatalf("empty log = %v, %v", refs, err)
	}
}

func TestLogClockBehind(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	lim := LogLimits{Retention: 48 * time.Hour, MaxEntries: 10}
	now := time.Now()
	a, err := s.Log().Append(ctx, logEntry(2, "200", now), lim)
	if err != nil {
		t.Fatal(err)
	}
	// Another process whose clock is a second behind still appends, after.
	b, err := s.Log().Append(ctx, logEntry(2, "200", now.Add(-time.Second)), lim)
	if err != nil || b <= a {
		t.Fatalf("behind clock: id %d after %d, %v", b, a, err)
	}
}

func TestLatestEventAndThrottle(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if b, err := s.Samples().Latest(ctx, "acme/api", "push"); err != nil || b != nil {
		t.Fatalf("no latest = %s, %v", b, err)
	}
	if err := s.Samples().Keep(ctx, []*webhook.Event{{Project: "Acme/API", Trigger: "push", Body: []byte(`{"x":1}`)}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Samples().Latest(ctx, "acme/api", "push"); err != nil || string(b) != `{"x":1}` {
		t.Fatalf("latest = %s, %v", b, err)
	}
	now := time.Now()
	for i := range 6 {
		ok, wait, err := s.Control().Throttle(ctx, "test", "project:1:admin", 5, time.Minute, now)
		if err != nil || ok != (i < 5) || (!ok && (wait <= 0 || wait > time.Minute)) {
			t.Fatalf("call %d: ok %v wait %s err %v", i+1, ok, wait, err)
		}
	}
	if ok, _, _ := s.Control().Throttle(ctx, "test", "project:1:other", 5, time.Minute, now); !ok {
		t.Fatal("another caller shares the count")
	}
	if ok, _, _ := s.Control().Throttle(ctx, "test", "project:1:admin", 5, time.Minute, now.Add(time.Minute)); !ok {
		t.Fatal("the next window is still limited")
	}
}

func TestEncodeLogEntry(t *testing.T) {
	e := &webhook.LogEntry{HookID: 3, EventID: "e", Trigger: "push", Kind: "delivery", URL: "http://x/{p}",
		RequestHeaders:  map[string]string{"req_data": "0", "X-Gitlab-Event": "Push Hook"},
		RequestData:     json.RawMessage(`{"a": [1, 2], "s": "\"req_data\":0"}`),
		ResponseHeaders: map[string]string{}, ResponseBody: `"req_data":0`, ResponseStatus: "200", CreatedAt: time.Unix(5, 0).UTC()}
	got, err := encodeLogEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(e) // compacts the payload; ours keeps it as stored
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("encodeLogEntry = %s: %v", got, err)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("encodeLogEntry =\n%s\nwant the same as json.Marshal:\n%s", got, want)
	}
	if !bytes.Contains(got, []byte(`"req_data":{"a": [1, 2], "s": "\"req_data\":0"}`)) {
		t.Errorf("payload not kept as stored: %s", got)
	}
}

// TestEncodeLogEntryAsJSON: the hand-written encoding is byte for byte
// json.Marshal's, whatever the strings, headers and numbers hold.
func TestEncodeLogEntryAsJSON(t *testing.T) {
	at := time.Date(2026, 11, 29, 7, 1, 2, 345678900, time.UTC)
	for _, e := range []*webhook.LogEntry{
		{HookID: 1, EventID: "0194f0c2-7d1e-7a51-9a4c-5b1c2d3e4f50", Chain: "c", Trigger: "push", Kind: "delivery",
			URL: "http://127.0.0.1/h/{path}", RequestHeaders: map[string]string{"X-Gitlab-Token": "[REDACTED]",
				"User-Agent": "GitLab/18.6.0", "Content-Type": "application/json"}, RequestData: json.RawMessage(`{"a":1}`),
			ResponseHeaders: map[string]string{"Date": "Sun, 29 Nov 2026 07:01:02 GMT"}, ResponseStatus: "200",
			Duration: 0.001234567, CreatedAt: at},
		{HookID: -7, EventID: `e"\<>&`, Trigger: "push", Kind: "test", URL: "http://x/?a=1&b=2",
			RequestHeaders: map[string]string{}, Oversize: true, Rendered: true, RequestData: json.RawMessage(`{"oversize":true}`),
			ResponseBody: "<html>é\u2028\x00\xff</html>", ResponseStatus: "internal error", InternalError: "dial tcp: i/o timeout\n",
			Duration: 5e-7, CreatedAt: at.In(time.FixedZone("x", 3600))},
		{HookID: 3, Duration: 1e21, CreatedAt: time.Time{}},
		{HookID: 4, Duration: 123456.75, ResponseHeaders: map[string]string{"A": "\t"}, CreatedAt: at},
	} {
		got, err := encodeLogEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("encodeLogEntry =\n%s\njson.Marshal =\n%s", got, want)
		}
	}
}

func FuzzEncodeLogEntry(f *testing.F) {
	f.Add("e", "push", "k<v>", "ü\x01", 0.5)
	f.Fuzz(func(t *testing.T, ev, trig, hk, body string, dur float64) {
		if math.IsInf(dur, 0) || math.IsNaN(dur) {
			return
		}
		e := &webhook.LogEntry{HookID: 1, EventID: ev, Trigger: trig, RequestHeaders: map[string]string{hk: body, "b": hk},
			ResponseBody: body, Duration: dur, CreatedAt: time.Unix(1, 5).UTC()}
		got, err := encodeLogEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(e)
		if !bytes.Equal(got, want) {
			t.Errorf("encodeLogEntry =\n%q\njson.Marshal =\n%q", got, want)
		}
	})
}

// TestLogWrittenBeforeTheTails: a hook's log written by a version without
// the shard's log tails (entries holding payload references, named in the
// set of logs) keeps its order and releases the references of what its
// trims drop; the janitor still finds it through the set.
func TestLogWrittenBeforeTheTails(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	k, c := s.c.keys, s.c.rdb
	lim := LogLimits{Retention: time.Hour, MaxEntries: 2}
	now := time.Now()
	// As the earlier version left it: two entries, each holding a
	// reference to its event's payload.
	for i, ev := range []string{"old-1", "old-2"} {
		id := fmt.Sprintf("%d-0", now.Add(time.Duration(i)*time.Millisecond).UnixMilli())
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: k.HookLog(0, 1), ID: id,
			Values: []any{"s", "200", "l", `{"hook":1}`, "p", ev}}).Err(); err != nil {
			t.Fatal(err)
		}
		c.Set(ctx, k.Payload(0, ev), `{"a":1}`, 0)
		c.HSet(ctx, k.Refs(0), ev, 1)
	}
	c.SAdd(ctx, k.Logs(0), "1")
	// A new entry a millisecond before the last old one: it still goes
	// after it, and the cap drops the oldest, releasing its payload.
	id, err := s.Log().Append(ctx, logEntry(1, "201", now), lim)
	if err != nil {
		t.Fatal(err)
	}
	if want := (now.UnixMilli()+1)*1000 + 64; id != want {
		t.Errorf("new entry %d, want %d (after the last old one)", id, want)
	}
	if n := c.Exists(ctx, k.Payload(0, "old-1")).Val(); n != 0 {
		t.Error("the payload of the dropped entry is kept")
	}
	if n := c.Exists(ctx, k.Payload(0, "old-2")).Val(); n != 1 {
		t.Error("the payload of a kept entry is gone")
	}
	// The janitor trims it by age through the set, and everything goes.
	if n, err := s.Log().Trim(ctx, lim, now.Add(2*time.Hour)); err != nil || n != 2 {
		t.Fatalf("Trim = %d, %v; want the 2 entries left", n, err)
	}
	if n := c.Exists(ctx, k.HookLog(0, 1), k.Logs(0), k.LogTails(0), k.Payload(0, "old-2"), k.Refs(0)).Val(); n != 0 {
		t.Errorf("%d keys left after the log emptied", n)
	}
}
