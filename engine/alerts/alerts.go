// Package alerts tells the operator's endpoints (the webhooks app's
// alerts block) what they must know: a hook disabled, for a while or
// until re-enabled, and back; deliveries given up on (rolled up: at most
// one alert per hook per interval); the oldest ready delivery older than a
// threshold; Caddy spooling events because Redis is down, and Redis back.
//
// An alert is signed JSON (the Standard Webhooks headers, with the
// endpoint's signing token) in one envelope:
//
//	{"id": "<uuid>", "type": "hook.disabled", "timestamp": "…",
//	 "namespace": "webhooks", "instance": "<Caddy's instance id>", "data": {…}}
//
// Every alert but Redis's goes through the engine as any delivery (queued,
// retried, logged in the endpoint's log); those of Redis go straight from
// the process, with a bounded retry of their own, as Redis is the problem.
package alerts

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/metrics"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The alerts' types.
const (
	TypeHookDisabled     = "hook.disabled"
	TypeHookEnabled      = "hook.enabled"
	TypeDeadLettered     = "deliveries.dead_lettered"
	TypeQueueBacklog     = "queue.backlog"
	TypeRedisUnreachable = "redis.unreachable"
	TypeRedisReachable   = "redis.reachable"
)

// Defaults of Config.
const (
	DefaultDeadLetterInterval = 10 * time.Minute
	DefaultQueueAge           = 5 * time.Minute
)

// Config is the alerts' settings.
type Config struct {
	// DeadLetterInterval is the least time between two alerts of a hook's
	// dead letters (and between two backlog alerts). Default: 10m.
	DeadLetterInterval time.Duration
	// QueueAge is the age of the oldest ready delivery above which the
	// backlog is alerted; negative: never. Default: 5m.
	QueueAge time.Duration
	// Namespace names the Redis namespace in each alert.
	Namespace string
}

// Store is what alerts share in Redis.
type Store struct {
	Queue  *redisstore.Queue
	Alerts *redisstore.Alerts
}

// Sender sends an alert straight to an endpoint, outside the queue; it
// tells whether deliveries are held (an operator pause, silent mode: a
// backlog then is no news).
type Sender interface {
	SendAlert(ctx context.Context, h *webhook.Hook, id string, body []byte) delivery.Result
	Holding() bool
}

// Alert is the envelope every alert has.
type Alert struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Namespace string    `json:"namespace"`
	Instance  string    `json:"instance"`
	Data      any       `json:"data"`
}

// Alerter raises the alerts of one runtime.
type Alerter struct {
	store    Store
	hooks    func() *webhook.HookSet
	consumer string
	send     Sender
	log      *zap.Logger
	cfg      atomic.Pointer[Config]

	pending chan Alert // raised, to be queued by Step
	wake    chan struct{}

	mu      sync.Mutex
	dead    map[int64]*redisstore.DeadCount // counted since the last flush
	flushed time.Time
	direct  sync.WaitGroup
}

// pendingMax bounds the alerts raised and not yet queued; beyond it they
// are dropped (counted): raising never blocks a delivery's settle.
const pendingMax = 1024

// New builds the alerter of a runtime.
func New(store Store, hooks func() *webhook.HookSet, consumer string, send Sender, log *zap.Logger) *Alerter {
	a := &Alerter{store: store, hooks: hooks, consumer: consumer, send: send, log: log,
		pending: make(chan Alert, pendingMax), wake: make(chan struct{}, 1), dead: map[int64]*redisstore.DeadCount{}}
	a.Configure(Config{})
	return a
}

// Configure swaps in new settings (zero fields: defaults).
func (a *Alerter) Configure(c Config) {
	if c.DeadLetterInterval <= 0 {
		c.DeadLetterInterval = DefaultDeadLetterInterval
	}
	if c.QueueAge == 0 {
		c.QueueAge = DefaultQueueAge
	}
	a.cfg.Store(&c)
}

func (a *Alerter) holding() bool { return a.send.Holding() }

// endpoints are the operator's alert endpoints in effect.
func (a *Alerter) endpoints() []*webhook.Hook { return a.hooks().Operators() }

// raise queues an alert for Step, without blocking.
func (a *Alerter) raise(typ string, data any) {
	if len(a.endpoints()) == 0 {
		return
	}
	al := a.alert(typ, data)
	select {
	case a.pending <- al:
		select {
		case a.wake <- struct{}{}:
		default:
		}
	default:
		metrics.AlertsDropped.Inc()
		a.log.Warn("alert dropped: too many waiting to be queued", zap.String("type", typ))
	}
}

func (a *Alerter) alert(typ string, data any) Alert {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	return Alert{ID: id.String(), Type: typ, Timestamp: time.Now().UTC(), Namespace: a.cfg.Load().Namespace,
		Instance: a.consumer, Data: data}
}

// hookData is how an alert names a hook: never its secrets.
type hookData struct {
	ID      int64  `json:"hook_id"`
	Name    string `json:"hook_name,omitempty"`
	URL     string `json:"url"`
	Project string `json:"project,omitempty"`
	Group   string `json:"group,omitempty"`
}

func hookOf(h *webhook.Hook) hookData {
	return hookData{ID: h.ID, Name: h.Name, URL: h.MaskedURL(), Project: h.Project, Group: h.Group}
}

// HookDisabled raises hook.disabled: "temporarily" (until disabled_until)
// or "permanently" (until re-enabled).
func (a *Alerter) HookDisabled(h *webhook.Hook, st redisstore.Settled, lastStatus string) {
	data := struct {
		hookData
		Disabled      string     `json:"disabled"`
		DisabledUntil *time.Time `json:"disabled_until"`
		Failures      int        `json:"recent_failures"`
		LastStatus    string     `json:"last_status"`
	}{hookData: hookOf(h), Disabled: "permanently", Failures: st.Fails, LastStatus: lastStatus}
	if !st.Disabled {
		until := st.DisabledUntil.UTC()
		data.Disabled, data.DisabledUntil = "temporarily", &until
	}
	a.raise(TypeHookDisabled, data)
}

// HookEnabled raises hook.enabled: how is "delivered" (a success after a
// disable) or "re-enabled" (a successful test, a person).
func (a *Alerter) HookEnabled(h *webhook.Hook, how string) {
	a.raise(TypeHookEnabled, struct {
		hookData
		How string `json:"how"`
	}{hookOf(h), how})
}

// DeadLettered counts a delivery given up on, by the kind of its reason
// (client_error, gone, exhausted, expired, hook_disabled, poison); Step
// rolls the counts up into one alert per hook per interval.
func (a *Alerter) DeadLettered(h *webhook.Hook, dv *webhook.Delivery, kind string) {
	if len(a.endpoints()) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.dead[h.ID]
	if c == nil {
		c = &redisstore.DeadCount{HookID: h.ID, Reasons: map[string]int{}, First: dv.EventID, Since: time.Now()}
		a.dead[h.ID] = c
	}
	c.Count++
	c.Reasons[kind]++
}

// QueueAge is told the age of the oldest ready delivery (the runtime's
// monitor reads it): over the threshold, queue.backlog is raised, at most
// once per interval across processes.
func (a *Alerter) QueueAge(ctx context.Context, age time.Duration, ready int64) {
	cfg := a.cfg.Load()
	if cfg.QueueAge < 0 || age <= cfg.QueueAge || len(a.endpoints()) == 0 || a.holding() {
		return
	}
	open, err := a.store.Alerts.Gate(ctx, "backlog", cfg.DeadLetterInterval)
	if err != nil || !open {
		return
	}
	a.raise(TypeQueueBacklog, struct {
		Queue            string  `json:"queue"`
		OldestAgeSeconds float64 `json:"oldest_age_seconds"`
		ThresholdSeconds float64 `json:"threshold_seconds"`
		Depth            int64   `json:"depth"`
	}{"ready", age.Seconds(), cfg.QueueAge.Seconds(), ready})
}

// flushEvery is how often each process adds its dead-letter counts to
// the shared ones and looks for alerts due (more often with a shorter
// DeadLetterInterval).
const flushEvery = 5 * time.Second

// Step queues the alerts raised, and every flushEvery the dead letters'
// roll-ups that are due; the runtime calls it in a loop. A failure keeps
// the counts (they go at the next step); raised alerts that could not be
// queued are logged and dropped.
func (a *Alerter) Step(ctx context.Context) (time.Duration, error) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-a.wake:
	case <-t.C:
	case <-ctx.Done():
		return 0, nil
	}
	var raised []Alert
	for len(raised) < pendingMax {
		select {
		case al := <-a.pending:
			raised = append(raised, al)
			continue
		default:
		}
		break
	}
	if err := a.queue(ctx, raised); err != nil {
		a.log.Error("alerts could not be queued; they are lost", zap.Int("alerts", len(raised)), zap.Error(err))
		metrics.AlertsDropped.Add(float64(len(raised)))
	}
	if time.Since(a.flushed) < min(flushEvery, a.cfg.Load().DeadLetterInterval) || len(a.endpoints()) == 0 {
		return 0, nil
	}
	return 0, a.flushDead(ctx)
}

// flushDead adds this process's dead-letter counts to the shared ones and
// raises the roll-ups whose interval is over.
func (a *Alerter) flushDead(ctx context.Context) error {
	a.mu.Lock()
	counts := make([]redisstore.DeadCount, 0, len(a.dead))
	for _, c := range a.dead {
		counts = append(counts, *c)
	}
	a.dead = map[int64]*redisstore.DeadCount{}
	a.mu.Unlock()
	if err := a.store.Alerts.AddDead(ctx, counts); err != nil {
		a.mu.Lock()
		for i := range counts { // kept for the next flush
			c := counts[i]
			if cur := a.dead[c.HookID]; cur != nil {
				cur.Count += c.Count
				for r, n := range c.Reasons {
					cur.Reasons[r] += n
				}
			} else {
				a.dead[c.HookID] = &c
			}
		}
		a.mu.Unlock()
		return err
	}
	a.flushed = time.Now()
	due, err := a.store.Alerts.TakeDead(ctx, a.cfg.Load().DeadLetterInterval)
	if err != nil {
		return err
	}
	var raised []Alert
	for _, d := range due {
		h, ok := a.hooks().Get(d.HookID)
		data := struct {
			hookData
			Count        int            `json:"count"`
			Reasons      map[string]int `json:"reasons"`
			FirstEventID string         `json:"first_event_id"`
			Since        time.Time      `json:"since"`
		}{hookData: hookData{ID: d.HookID}, Count: d.Count, Reasons: d.Reasons, FirstEventID: d.First, Since: d.Since.UTC()}
		if ok {
			data.hookData = hookOf(h)
		}
		raised = append(raised, a.alert(TypeDeadLettered, data))
	}
	return a.queue(ctx, raised)
}

// queue puts alerts in the queue, one delivery per endpoint each, with
// its own body (the alert is its payload).
func (a *Alerter) queue(ctx context.Context, raised []Alert) error {
	eps := a.endpoints()
	if len(raised) == 0 || len(eps) == 0 {
		return nil
	}
	var ds []webhook.Delivery
	for _, al := range raised {
		body, err := json.Marshal(al)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			ds = append(ds, webhook.Delivery{EventID: al.ID, HookID: ep.ID, Trigger: "alert", Chain: al.ID,
				At: al.Timestamp, Body: body, Attempt: 1})
		}
		metrics.Alerts.WithLabelValues(al.Type).Inc()
	}
	return a.store.Queue.AddDeliveries(ctx, ds)
}

// Direct sends of the alerts about Redis: a few attempts, spaced.
var directWaits = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// RedisOutage raises redis.unreachable (down: events go to the spool) or
// redis.reachable, sent straight to every endpoint from this process: the
// queue is in Redis.
func (a *Alerter) RedisOutage(ctx context.Context, down bool, redis string, since time.Time) {
	eps := a.endpoints()
	if len(eps) == 0 {
		return
	}
	typ := TypeRedisUnreachable
	data := map[string]any{"redis": redis, "since": since.UTC(), "spooling": true}
	if !down {
		typ = TypeRedisReachable
		data = map[string]any{"redis": redis, "down_since": since.UTC(), "down_seconds": time.Since(since).Seconds()}
	}
	al := a.alert(typ, data)
	body, err := json.Marshal(al)
	if err != nil {
		return
	}
	metrics.Alerts.WithLabelValues(typ).Inc()
	for _, ep := range eps {
		a.direct.Add(1)
		go func() {
			defer a.direct.Done()
			a.sendDirect(ctx, ep, al, body)
		}()
	}
}

// sendDirect sends one alert to one endpoint, tried len(directWaits)
// times at most; a failure in the end is logged and counted.
func (a *Alerter) sendDirect(ctx context.Context, ep *webhook.Hook, al Alert, body []byte) {
	var res delivery.Result
	for _, wait := range directWaits {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		res = a.send.SendAlert(ctx, ep, al.ID, body)
		if res.Success() {
			return
		}
	}
	metrics.AlertsFailed.Inc()
	errText := ""
	if res.Err != nil {
		errText = res.Err.Error()
	}
	a.log.Error("alert could not be sent to the operator's endpoint", zap.String("type", al.Type),
		zap.String("url", ep.MaskedURL()), zap.Int("status", res.Status), zap.String("error", errText))
}

// Wait waits for the direct sends under way.
func (a *Alerter) Wait() { a.direct.Wait() }
