package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
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

func logEntry(hook int64, status string, at time.Time) *LogEntry {
	return &LogEntry{HookID: hook, EventID: "ev", Trigger: "push", Kind: "delivery", URL: "http://x/",
		RequestData: json.RawMessage(`{"a":1}`), ResponseStatus: status, CreatedAt: at}
}

func TestLogRetentionAndCap(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	lim := LogLimits{Retention: time.Hour, MaxEntries: 5}
	t0 := time.Now().Add(-3 * time.Hour)
	var ids []int64
	for i := range 3 {
		id, err := s.AppendLog(ctx, logEntry(1, "200", t0.Add(time.Duration(i)*time.Millisecond)), lim)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] != t0.UnixMilli()*1000 || ids[1] <= ids[0] || ids[2] <= ids[1] {
		t.Fatalf("ids %v do not follow the entries' times (t0 %d)", ids, t0.UnixMilli())
	}
	// An entry two hours later trims those older than the retention.
	if _, err := s.AppendLog(ctx, logEntry(1, "500", t0.Add(2*time.Hour)), lim); err != nil {
		t.Fatal(err)
	}
	if n := s.rdb.XLen(ctx, s.keys.HookLog(0, 1)).Val(); n != 1 {
		t.Fatalf("after retention: %d entries, want 1", n)
	}
	// A log that stopped growing is trimmed by the janitor, and goes.
	if n, err := s.TrimLogs(ctx, lim, t0.Add(4*time.Hour)); err != nil || n != 1 {
		t.Fatalf("TrimLogs = %d, %v; want the one entry older than the retention", n, err)
	}
	if n := s.rdb.Exists(ctx, s.keys.HookLog(0, 1), s.keys.Logs(0)).Val(); n != 0 {
		t.Fatalf("an emptied log is kept (%d keys)", n)
	}
	// The cap keeps the newest entries.
	now := time.Now()
	for i := range 8 {
		if _, err := s.AppendLog(ctx, logEntry(1, fmt.Sprint(200+i), now.Add(time.Duration(i)*time.Millisecond)), lim); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := s.LogRefs(ctx, 1, now.Add(-time.Hour))
	if err != nil || len(refs) != 5 || refs[0].Status != "207" || refs[4].Status != "203" {
		t.Fatalf("refs = %+v, %v; want the 5 newest, newest first", refs, err)
	}
	es, err := s.LogEntries(ctx, 1, refs[0].ID, 42, refs[1].ID)
	if err != nil || len(es) != 2 || es[0].ID != refs[0].ID || es[0].ResponseStatus != "207" || string(es[1].RequestData) != `{"a":1}` {
		t.Fatalf("entries = %+v, %v", es, err)
	}
	// since filters out older entries even before a trim.
	if refs, _ := s.LogRefs(ctx, 1, now.Add(5*time.Millisecond)); len(refs) != 3 {
		t.Fatalf("since: %d refs, want 3", len(refs))
	}
	if refs, err := s.LogRefs(ctx, 99, time.Time{}); err != nil || len(refs) != 0 {
		t.Fatalf("empty log = %v, %v", refs, err)
	}
}

func TestLogClockBehind(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	lim := LogLimits{Retention: 48 * time.Hour, MaxEntries: 10}
	now := time.Now()
	a, err := s.AppendLog(ctx, logEntry(2, "200", now), lim)
	if err != nil {
		t.Fatal(err)
	}
	// Another process whose clock is a second behind still appends, after.
	b, err := s.AppendLog(ctx, logEntry(2, "200", now.Add(-time.Second)), lim)
	if err != nil || b <= a {
		t.Fatalf("behind clock: id %d after %d, %v", b, a, err)
	}
}

func TestLatestEventAndThrottle(t *testing.T) {
	s := newLogStore(t)
	ctx := context.Background()
	if b, err := s.LatestEvent(ctx, "acme/api", "push"); err != nil || b != nil {
		t.Fatalf("no latest = %s, %v", b, err)
	}
	if err := s.SetLatestEvents(ctx, []*webhook.Event{{Project: "Acme/API", Trigger: "push", Body: []byte(`{"x":1}`)}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if b, err := s.LatestEvent(ctx, "acme/api", "push"); err != nil || string(b) != `{"x":1}` {
		t.Fatalf("latest = %s, %v", b, err)
	}
	now := time.Now()
	for i := range 6 {
		ok, wait, err := s.Throttle(ctx, "test", "project:1:admin", 5, time.Minute, now)
		if err != nil || ok != (i < 5) || (!ok && (wait <= 0 || wait > time.Minute)) {
			t.Fatalf("call %d: ok %v wait %s err %v", i+1, ok, wait, err)
		}
	}
	if ok, _, _ := s.Throttle(ctx, "test", "project:1:other", 5, time.Minute, now); !ok {
		t.Fatal("another caller shares the count")
	}
	if ok, _, _ := s.Throttle(ctx, "test", "project:1:admin", 5, time.Minute, now.Add(time.Minute)); !ok {
		t.Fatal("the next window is still limited")
	}
}

func TestEncodeLogEntry(t *testing.T) {
	e := &LogEntry{HookID: 3, EventID: "e", Trigger: "push", Kind: "delivery", URL: "http://x/{p}",
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
