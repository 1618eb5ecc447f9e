package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Helpers of the tests of the sharded layout (payloads held by reference,
// queue shards).

// shardedRuntime builds a runtime on redisURL (namespace "test") whose
// queues have the given number of shards; nothing runs until Start.
func shardedRuntime(t *testing.T, opts redisstore.Options, consumer string, cfg Config, hooks ...*webhook.Hook) *Runtime {
	t.Helper()
	if opts.Namespace == "" {
		opts.Namespace = "test"
	}
	if opts.Readers == 0 {
		opts.Readers = 2 * max(opts.Shards, 1) // as the module sets it
	}
	store, err := redisstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	set, err := webhook.NewHookSet(hooks)
	if err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime(store, consumer, zaptest.NewLogger(t))
	rt.Configure(cfg, set)
	return rt
}

// startSharded starts shardedRuntime and closes it when the test ends.
func startSharded(t *testing.T, opts redisstore.Options, cfg Config, hooks ...*webhook.Hook) *Runtime {
	t.Helper()
	rt := shardedRuntime(t, opts, "c1", cfg, hooks...)
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(time.Second) })
	return rt
}

// eventIn makes a push event of project with body whose chain (its own
// ID: it starts one) lands in the given shard of n.
func eventIn(t *testing.T, project string, body []byte, shard, n int) *webhook.Event {
	t.Helper()
	for range 10_000 {
		ev, err := webhook.NewEvent(webhook.Signals{Event: "push", Project: project, Ref: "refs/heads/main"}, body, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if redisstore.ShardOf(ev.Chain, n) == shard {
			return ev
		}
	}
	t.Fatalf("no event ID of shard %d of %d", shard, n)
	return nil
}

// pushBody is a small push payload told apart by tag.
func pushBody(tag string) []byte {
	return []byte(`{"object_kind":"push","ref":"refs/heads/main","tag":"` + tag + `"}`)
}

// recorder is a receiver that answers each request with status(key,
// attempt) — attempt counts the requests with that Idempotency-Key, from
// 1 — and records every request by Idempotency-Key.
type recorder struct {
	URL    string
	status func(key string, attempt int) int
	delay  time.Duration

	mu  sync.Mutex
	got map[string][]received
	n   int
}

func newRecorder(t *testing.T, status func(key string, attempt int) int) *recorder {
	t.Helper()
	r := &recorder{status: status, got: map[string][]received{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if r.delay > 0 {
			time.Sleep(r.delay)
		}
		key := req.Header.Get("Idempotency-Key")
		r.mu.Lock()
		r.got[key] = append(r.got[key], received{header: req.Header.Clone(), body: string(b)})
		r.n++
		attempt := len(r.got[key])
		r.mu.Unlock()
		w.WriteHeader(r.status(key, attempt))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// always answers every request with status.
func always(status int) func(string, int) int { return func(string, int) int { return status } }

// firstFails answers a delivery's first attempt with 500, later ones with 200.
func firstFails(_ string, attempt int) int {
	if attempt == 1 {
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// requests returns what arrived for the delivery of event to hook.
func (r *recorder) requests(eventID string, hookID int64) []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got[webhook.IdempotencyKey(eventID, hookID)]...)
}

// waitTotal waits until n requests arrived in all.
func (r *recorder) waitTotal(t *testing.T, n int) {
	t.Helper()
	within(t, 10*time.Second, fmt.Sprintf("%d requests", n), func() (bool, string) {
		got := r.total()
		return got >= n, fmt.Sprintf("%d arrived", got)
	})
}

// waitFor waits until the delivery of event to hook arrived n times.
func (r *recorder) waitFor(t *testing.T, eventID string, hookID int64, n int) []received {
	t.Helper()
	within(t, 10*time.Second, fmt.Sprintf("%d requests of event %s to hook %d", n, eventID, hookID), func() (bool, string) {
		got := len(r.requests(eventID, hookID))
		return got >= n, fmt.Sprintf("%d arrived", got)
	})
	return r.requests(eventID, hookID)
}

// groupHook is a push hook of a group.
func groupHook(t *testing.T, id int64, group, url string) *webhook.Hook {
	h := pushHook(t, id, "", group)
	h.URL = url
	return h
}

// slackHook is a Slack integration of a project that notifies of pushes
// to any branch.
func slackHook(t *testing.T, id int64, project, url string) *webhook.Hook {
	t.Helper()
	h := &webhook.Hook{ID: id, Name: "slack", Project: project, URL: url + "/services/T0/B0/x",
		Chat: &chat.Settings{Service: chat.Slack, BranchesToBeNotified: chat.BranchesAll}}
	h.Chat.Triggers.Add(gitlab.Push)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return h
}

// settled waits until every shard the store may read has no event, ready
// delivery or scheduled delivery left. Each shard is read in one look (a
// transaction: its keys share a slot): read one by one, a retry moved from
// the schedule to the ready stream between the two reads was in neither.
func settled(t *testing.T, rt *Runtime) {
	t.Helper()
	s, c, k := rt.store, rt.store.Client(), rt.store.Keys()
	within(t, 10*time.Second, "every queue to settle", func() (bool, string) {
		var left []string
		ctx := context.Background()
		for i := range s.Queue().ReadShards() {
			var ev, rd, sc *redis.IntCmd
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				ev, rd, sc = p.XLen(ctx, k.Events(i)), p.XLen(ctx, k.Ready(i)), p.ZCard(ctx, k.Schedule(i))
				return nil
			})
			if err != nil {
				left = append(left, fmt.Sprintf("shard %d: %v", i, err))
			} else if n := ev.Val() + rd.Val() + sc.Val(); n > 0 {
				left = append(left, fmt.Sprintf("shard %d: %d events, %d ready, %d scheduled", i, ev.Val(), rd.Val(), sc.Val()))
			}
		}
		return len(left) == 0, strings.Join(left, "; ")
	})
}

// readyDeliveries reads the deliveries in the ready streams of every shard
// the store may read, pending ones included.
func readyDeliveries(t *testing.T, rt *Runtime) []webhook.Delivery {
	t.Helper()
	s, c, k := rt.store, rt.store.Client(), rt.store.Keys()
	var out []webhook.Delivery
	for i := range s.Queue().ReadShards() {
		msgs, err := c.XRange(context.Background(), k.Ready(i), "-", "+").Result()
		if err != nil {
			t.Fatalf("reading the ready stream of shard %d: %v", i, err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["d"].(string)
			d, err := redisstore.DecodeDelivery(raw)
			if err != nil {
				t.Fatalf("ready entry %s of shard %d: %v (%q)", m.ID, i, err, raw)
			}
			out = append(out, d)
		}
	}
	return out
}

// describeDeliveries names each delivery by hook and attempt, for messages.
func describeDeliveries(ds []webhook.Delivery) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("hook %d attempt %d", d.HookID, d.Attempt)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// deadByShard lists the dead letters of each shard, oldest first.
func deadByShard(t *testing.T, rt *Runtime) map[int][]redisstore.DeadLetter {
	t.Helper()
	dls, err := rt.store.DeadLetters().List(context.Background(), "-", 10_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]redisstore.DeadLetter{}
	for _, d := range dls {
		out[deadShard(d.ID)] = append(out[deadShard(d.ID)], d)
	}
	return out
}

// deadShard is the shard in a dead letter's ID ("<stream id>@<shard>",
// no suffix in shard 0).
func deadShard(id string) int {
	_, sh, ok := strings.Cut(id, "@")
	if !ok {
		return 0
	}
	var n int
	fmt.Sscan(sh, &n)
	return n
}

// checkLogBodies reads every entry listed in a hook's log through the
// runtime, as the API does, and checks that its request data is what was
// sent for its event. It returns how many entries it checked.
func checkLogBodies(t *testing.T, rt *Runtime, hookID int64, sent map[string][]byte) int {
	t.Helper()
	ctx := context.Background()
	refs, err := rt.HookLog(ctx, hookID)
	if err != nil {
		t.Fatalf("listing the log of hook %d: %v", hookID, err)
	}
	ids := make([]int64, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	es, err := rt.HookLogEntries(ctx, hookID, ids...)
	if err != nil {
		t.Fatalf("reading the log of hook %d: %v", hookID, err)
	}
	if len(es) != len(ids) {
		t.Errorf("hook %d: %d entries listed, %d could be read", hookID, len(ids), len(es))
	}
	for _, e := range es {
		want, ok := sent[e.EventID]
		if !ok {
			t.Errorf("hook %d: log entry %d of unknown event %s", hookID, e.ID, e.EventID)
			continue
		}
		if string(e.RequestData) != string(want) {
			t.Errorf("hook %d: log entry %d (event %s, %s) has request data %q, want %q", hookID, e.ID, e.EventID,
				e.ResponseStatus, e.RequestData, want)
		}
	}
	return len(es)
}
