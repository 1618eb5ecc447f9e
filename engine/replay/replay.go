// Package replay sends again, in one action, what was delivered or failed:
// the attempts of chosen hooks in a time range that failed (and were not
// delivered since), their dead letters, or every attempt. A replay is
// planned at once (a dry run only counts), recorded in Redis with the list
// of what it sends, and fed to the queue by one process at a time, at a
// pace that leaves live deliveries first: a page only while the ready
// queue is nearly empty, and no more than the replay rate. Replayed
// deliveries keep their event's ID, so their Idempotency-Key.
package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// What a replay sends again.
const (
	// Failed is each event whose attempts in the range failed and whose
	// last attempt kept in the log failed too (it was not delivered
	// since): its last payload.
	Failed = "failed"
	// Dead is the dead letters of the range (given up on then).
	Dead = "dead"
	// All is each event attempted in the range, delivered or not.
	All = "all"
)

// Statuses lists the statuses a replay takes.
var Statuses = []string{Failed, Dead, All}

// DefaultRate is how many deliveries a second replays feed at most: a
// hundred thousand in under twenty minutes, a small share of what one
// Caddy delivers, so live deliveries keep their latency on a busy machine
// (BENCHMARKS.md, scenario 12).
const DefaultRate = 100

// MaxItems bounds what one replay sends.
const MaxItems = 1_000_000

// Request says what to send again: the hooks (by id, or those of a
// project, or of a group and everything below it; none: every hook), the
// time range and the status. DryRun only counts.
type Request struct {
	Hooks   []int64   `json:"hooks,omitempty"`
	Project string    `json:"project,omitempty"`
	Group   string    `json:"group,omitempty"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`
	Status  string    `json:"status"`
	DryRun  bool      `json:"dry_run,omitempty"`
}

// Plan is what a replay selected: how many deliveries, by hook, what was
// left out and why (skipped), and what the range asks of data that is no
// longer kept (notes).
type Plan struct {
	Status  string         `json:"status"`
	Since   time.Time      `json:"since"`
	Until   time.Time      `json:"until"`
	Hooks   []int64        `json:"hooks"`
	Matched int            `json:"matched"`
	ByHook  map[string]int `json:"by_hook"`
	Skipped map[string]int `json:"skipped,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
	items   []string       // what the replay sends, in order
}

// Job is a replay as recorded: its plan, state (queued, running, done,
// canceled) and progress.
type Job struct {
	ID int64 `json:"id"`
	Plan
	State    string     `json:"state"`
	Sent     int        `json:"sent"`
	Queued   int        `json:"queued"`
	Gone     int        `json:"gone"`
	Created  time.Time  `json:"created_at"`
	Started  *time.Time `json:"started_at"`
	Finished *time.Time `json:"finished_at"`
}

// InputError is a request that cannot be planned as it is: an unknown
// status, a hook that does not exist, a range that ends before it starts.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func badInput(format string, args ...any) error { return &InputError{fmt.Sprintf(format, args...)} }

// Config is the replays' settings.
type Config struct {
	// Rate is how many deliveries a second replays feed at most (0:
	// DefaultRate).
	Rate int
	// Depth is how many ready deliveries may wait (replays' and live ones)
	// for a page of a replay to be fed.
	Depth int
	// LogRetention is how long the hooks' logs keep attempts.
	LogRetention time.Duration
}

// Store is what replays read and write in Redis.
type Store struct {
	Replays     *redisstore.Replays
	DeadLetters *redisstore.DeadLetters
	Queue       *redisstore.Queue
	Control     *redisstore.Control
}

// Replayer plans replays and feeds them to the queue.
type Replayer struct {
	store    Store
	hookLog  *hooklog.Log
	hooks    func() *webhook.HookSet
	consumer string
	log      *zap.Logger
	cfg      atomic.Pointer[Config]

	mu      sync.Mutex // the feeder's state, held by Step
	tokens  float64
	last    time.Time
	current *redisstore.ReplayRecord // the replay being fed
	read    time.Time                // when current was read
}

// New builds a replayer.
func New(store Store, hookLog *hooklog.Log, hooks func() *webhook.HookSet, consumer string, log *zap.Logger) *Replayer {
	return &Replayer{store: store, hookLog: hookLog, hooks: hooks, consumer: consumer, log: log}
}

// Configure swaps in new settings.
func (r *Replayer) Configure(c Config) {
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	c.Depth = max(c.Depth, 1)
	r.cfg.Store(&c)
}

// ParseStatus checks a replay's status.
func ParseStatus(s string) (string, error) {
	if slices.Contains(Statuses, s) {
		return s, nil
	}
	return "", badInput("status must be failed, dead or all, got %q", s)
}

// ParseTime reads a range bound: a time (RFC 3339) or how long ago (2h,
// 30m, 1d).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseAgo(s)
	if err != nil || d < 0 {
		return time.Time{}, badInput("%q is neither a time (RFC 3339) nor how long ago (2h, 30m, 1d)", s)
	}
	return now.Add(-d), nil
}

func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// Start plans a replay and, unless it is a dry run, records it to be fed.
func (r *Replayer) Start(ctx context.Context, req Request) (Job, error) {
	p, err := r.plan(ctx, req, time.Now())
	if err != nil {
		return Job{}, err
	}
	if req.DryRun || p.Matched == 0 {
		return Job{Plan: *p}, nil
	}
	spec, err := json.Marshal(p)
	if err != nil {
		return Job{}, err
	}
	id, err := r.store.Replays.Create(ctx, string(spec), p.items, time.Now())
	if err != nil {
		return Job{}, err
	}
	r.log.Info("replay queued", zap.Int64("replay", id), zap.String("status", p.Status), zap.Int("deliveries", p.Matched),
		zap.Time("since", p.Since), zap.Time("until", p.Until), zap.Int("hooks", len(p.Hooks)))
	return r.Get(ctx, id)
}

// List returns the replays kept, oldest first.
func (r *Replayer) List(ctx context.Context) ([]Job, error) {
	recs, err := r.store.Replays.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Job, 0, len(recs))
	for _, rec := range recs {
		out = append(out, jobOf(rec))
	}
	return out, nil
}

// Get returns one replay (redisstore.ErrReplayNotFound if not kept).
func (r *Replayer) Get(ctx context.Context, id int64) (Job, error) {
	rec, err := r.store.Replays.Get(ctx, id)
	if err != nil {
		return Job{}, err
	}
	return jobOf(rec), nil
}

// Cancel stops a replay; what it queued already stays queued.
func (r *Replayer) Cancel(ctx context.Context, id int64) (Job, error) {
	rec, err := r.store.Replays.Cancel(ctx, id, time.Now())
	if err != nil {
		return Job{}, err
	}
	return jobOf(rec), nil
}

func jobOf(rec redisstore.ReplayRecord) Job {
	j := Job{ID: rec.ID, State: rec.State, Sent: rec.Cursor, Queued: rec.Fed, Gone: rec.Gone, Created: rec.Created.UTC()}
	_ = json.Unmarshal([]byte(rec.Spec), &j.Plan)
	if !rec.Started.IsZero() {
		t := rec.Started.UTC()
		j.Started = &t
	}
	if !rec.Finished.IsZero() {
		t := rec.Finished.UTC()
		j.Finished = &t
	}
	return j
}

// errNotFound says a replay id is not kept.
var errNotFound = redisstore.ErrReplayNotFound

// IsNotFound tells whether err says a replay is not kept.
func IsNotFound(err error) bool { return errors.Is(err, errNotFound) }
