// Package module holds the Caddy modules of caddy-webhooks: the webhooks
// app that owns the Redis connection and the delivery workers (with its
// admin endpoints and `caddy webhooks` command), the webhooks_capture
// handler that turns an app's responses into events, the webhooks_api
// handler that serves GitLab's hooks API, and the webhooks_ui handler that
// serves the Settings > Webhooks page. The work itself is done by the
// engine package; this is the glue.
package module

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpproxy"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/fanout"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/engine/recovery"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/spool"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func init() {
	caddy.RegisterModule(new(App))
}

// Defaults of the app's settings.
const (
	DefaultRedis           = "redis://127.0.0.1:6379/0"
	DefaultNamespace       = "webhooks"
	DefaultShards          = 1
	DefaultClusterShards   = 16
	DefaultGitLabVersion   = "18.6.0"
	DefaultWorkers         = 32
	DefaultTimeout         = 10 * time.Second
	DefaultLease           = 60 * time.Second
	DefaultClaimInterval   = 10 * time.Second
	DefaultMaxResponseBody = 8 << 10
	DefaultMaxPayload      = 25 << 20
	DefaultSpoolMaxSize    = 256 << 20
	shutdownGrace          = 5 * time.Second
)

// SpoolOff as spool_dir turns the spool off.
const SpoolOff = "off"

// App is the webhooks app. It owns the Redis client and the delivery
// workers; they live in a process-wide pool keyed by Redis URL and
// namespace, so a config reload reuses them instead of starting a second
// set, and queued work is never dropped by a reload.
type App struct {
	// Redis is the URL of the Redis server holding the queues:
	// redis://[user:password@]host:port/db, rediss:// for TLS or
	// unix:///path. Placeholders such as {env.WEBHOOKS_REDIS_URL} are
	// resolved. Default: redis://127.0.0.1:6379/0.
	Redis string `json:"redis,omitempty"`

	// RedisMode is "" for a single Redis (or one behind a proxy), "cluster"
	// for Redis Cluster (more seed nodes as ?addr=host:port in the URL) or
	// "sentinel" for a Sentinel-managed master (the URL names a sentinel,
	// with ?master_name=<name> and more sentinels as ?addr=).
	RedisMode string `json:"redis_mode,omitempty"`

	// RedisCA is a PEM file of the CA that signed the Redis server's
	// certificate, for rediss:// URLs (default: the system's roots).
	RedisCA string `json:"redis_ca,omitempty"`

	// RedisClientCert and RedisClientKey are PEM files of a client
	// certificate for Redis servers that require one (tls-auth-clients).
	RedisClientCert string `json:"redis_client_cert,omitempty"`
	RedisClientKey  string `json:"redis_client_key,omitempty"`

	// ReplicaAcks is how many Redis replicas must have a captured event
	// before it counts as queued (Redis WAIT). With Sentinel, 1 makes an
	// acknowledged event survive a failover; without it, Redis's
	// asynchronous replication can lose the last writes. Not supported in
	// cluster mode. Default: 0 (do not wait).
	ReplicaAcks int `json:"replica_acks,omitempty"`

	// Namespace prefixes every Redis key, so several deployments can share
	// one Redis. Default: webhooks.
	Namespace string `json:"namespace,omitempty"`

	// Shards is how many queue shards the events and deliveries are spread
	// over, each its own Redis hash slot (1 to 64). One Redis server gains
	// nothing from more than one; a Redis Cluster spreads the shards over
	// its masters, so give it a few per master. Lowering it later is safe:
	// the shards left out are drained. Default: 1, or 16 in cluster mode.
	Shards int `json:"shards,omitempty"`

	// Instance is the base URL sent as X-Gitlab-Instance, e.g.
	// https://forge.example.com. Omitted from deliveries when empty.
	Instance string `json:"instance,omitempty"`

	// GitLabVersion is sent in the User-Agent header as GitLab/<version>.
	// Default: 18.6.0.
	GitLabVersion string `json:"gitlab_version,omitempty"`

	// Workers is how many deliveries may be in flight at once in this
	// process. Default: 32.
	Workers int `json:"workers,omitempty"`

	// Timeout bounds each delivery request (connect, TLS, headers and body).
	// Default: 10s, as GitLab.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Lease is how long an event or delivery taken by a process may stay
	// unfinished before another process takes it over (after a crash). Must
	// be longer than Timeout. Default: 60s.
	Lease caddy.Duration `json:"lease,omitempty"`

	// ClaimInterval is how often each process looks for work abandoned by
	// crashed processes. Default: 10s.
	ClaimInterval caddy.Duration `json:"claim_interval,omitempty"`

	// MaxAttempts bounds the attempts of one delivery. Transient failures
	// (5xx, 408, 429, timeouts, connection errors) are retried with
	// jittered exponential backoff and Retry-After honoured; a 4xx is not
	// retried. 1 is GitLab's behaviour. Default: 8.
	MaxAttempts int `json:"max_attempts,omitempty"`

	// RetryBackoff is the wait before the second attempt, doubled for each
	// further one. Default: 10s.
	RetryBackoff caddy.Duration `json:"retry_backoff,omitempty"`

	// MaxRetryBackoff caps the wait between attempts. Default: 1h.
	MaxRetryBackoff caddy.Duration `json:"max_retry_backoff,omitempty"`

	// RetrySchedule, instead of MaxAttempts and RetryBackoff, lists the
	// waits before each retry, in order and exactly (not jittered), e.g.
	// 10s 1m 5m 30m 2h: one attempt more than waits. A Retry-After later
	// than the wait still counts, up to MaxRetryBackoff. Hooks may have
	// their own. Default: none (exponential backoff).
	RetrySchedule []caddy.Duration `json:"retry_schedule,omitempty"`

	// ReplayRate is how many deliveries a second replays (POST
	// /webhooks/replays, caddy webhooks replay, the API's …/replay) send
	// at most, across every Caddy; they also wait while the ready queue
	// holds a quarter of this Caddy's workers' worth of deliveries (2 to
	// 8), so live ones go first. Default: 100.
	ReplayRate int `json:"replay_rate,omitempty"`

	// AutoDisable is how failures disable hooks: "gitlab" (the rule of
	// GitLab's webhooks page, with DisableAfterFailures, DisableFor and
	// MaxDisableFor), "off" (never; failures are still counted), or
	// "permanent_after <n>" (newer GitLab: every failure alike, disabled for
	// a while from the DisableAfterFailures-th, until re-enabled from the
	// n-th; n defaults to 40). Hooks may have their own. Default: gitlab.
	AutoDisable string `json:"auto_disable,omitempty"`

	// MaxDeliveryAge is how long a delivery may wait in all (retries, a
	// temporarily disabled hook, rate limits) before it is dead-lettered.
	// Default: 72h.
	MaxDeliveryAge caddy.Duration `json:"max_delivery_age,omitempty"`

	// HookConcurrency caps one hook's deliveries in flight per process, so
	// a slow or hanging receiver slows only itself. Default: 8.
	HookConcurrency int `json:"hook_concurrency,omitempty"`

	// CallsPerMinute caps deliveries per top-level namespace per minute,
	// across all processes, as GitLab's web_hook_calls limit. Over the
	// limit deliveries are delayed to the next minute, not dropped.
	// Default: 0 (no limit).
	CallsPerMinute int `json:"calls_per_minute,omitempty"`

	// DisableAfterFailures is the consecutive failure that disables a hook
	// (GitLab: 4). Default: 4.
	DisableAfterFailures int `json:"disable_after_failures,omitempty"`

	// DisableFor is how long a hook is first disabled; each further failure
	// doubles it, up to MaxDisableFor. Defaults: 1m and 24h, as GitLab.
	DisableFor    caddy.Duration `json:"disable_for,omitempty"`
	MaxDisableFor caddy.Duration `json:"max_disable_for,omitempty"`

	// SigningTokenOverlap is how long a signing token replaced through the
	// API keeps signing deliveries beside the new one (two signatures in
	// webhook-signature, as the Standard Webhooks specification allows),
	// so receivers can switch without refusing a delivery. Beyond GitLab,
	// which replaces the token at once. Default: 24h; negative: none.
	SigningTokenOverlap caddy.Duration `json:"signing_token_overlap,omitempty"`

	// SilentMode stops all outgoing deliveries while keeping them queued,
	// as GitLab's silent mode (which drops them).
	SilentMode bool `json:"silent_mode,omitempty"`

	// MaxResponseBody caps how much of a receiver's response body is read.
	// Default: 8 KiB, as GitLab stores.
	MaxResponseBody int64 `json:"max_response_body,omitempty"`

	// MaxPayload caps an event's payload, as GitLab's 25 MB limit: a
	// webhooks_capture max_body may not exceed it, and a larger body is
	// never sent (an internal error). Default: 25 MiB.
	MaxPayload int64 `json:"max_payload,omitempty"`

	// AllowLocalRequests lets deliveries reach loopback, private,
	// link-local (cloud metadata included), shared (CGNAT), unspecified,
	// multicast and reserved addresses, as GitLab's "Allow requests to the
	// local network from webhooks". Off by default: hook URLs with such
	// literal addresses (or localhost names) are refused when saved, and
	// connections to such addresses are refused when they are dialled,
	// after DNS, so a public name that resolves to a local address is
	// refused too. A hook URL with an IPv6 zone is refused either way.
	AllowLocalRequests bool `json:"allow_local_requests,omitempty"`

	// SpoolDir is where events are kept on local disk, fsynced, while
	// Redis cannot take them (down, or slower than the capture's
	// enqueue_timeout); they are queued in Redis, in order and with their
	// event IDs, once it answers again. "off" loses such events instead.
	// Default: <Caddy's data directory>/webhooks-spool/<namespace>.
	SpoolDir string `json:"spool_dir,omitempty"`

	// SpoolMaxSize caps the spool file; events beyond it are lost (logged
	// and counted in spool_rejected_total). Default: 256 MiB.
	SpoolMaxSize int64 `json:"spool_max_size,omitempty"`

	// EgressProxy is the forward proxy deliveries leave through: an http,
	// https or socks5 URL, its credentials in the user info
	// (http://user:password@proxy.corp:3128; placeholders such as
	// {env.WEBHOOKS_EGRESS_PROXY} are resolved, and the URL is never
	// logged unmasked), or "off" to send straight to receivers whatever
	// the environment says. A hook may name its own. The proxy resolves
	// receivers' names itself: each hook's host is resolved and checked
	// against the network policy before the request is handed over, and
	// the proxy's own address is not checked (it is yours). Default: the
	// environment's HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as Go reads them;
	// without them, straight to receivers.
	EgressProxy string `json:"egress_proxy,omitempty"`

	// AllowNetworks are networks (CIDR, or single addresses) deliveries
	// may reach even with AllowLocalRequests off, e.g. 10.1.2.0/24 for one
	// internal receiver. An IPv6 address that leads into one (IPv4-mapped,
	// NAT64, 6to4, Teredo) is allowed too. Default: none.
	AllowNetworks []string `json:"allow_networks,omitempty"`

	// LogRetention is how long each hook's delivery log ("Recent events",
	// GET …/hooks/:hook_id/events) keeps attempts. Default: 48h, as the
	// window of GitLab's docs.
	LogRetention caddy.Duration `json:"log_retention,omitempty"`

	// MaxDeadLetters caps the dead letters kept (deliveries given up on,
	// each with its payload); past it the oldest are dropped and counted in
	// dead_letters_trimmed_total{bound="count"}. Default: 100,000.
	MaxDeadLetters int `json:"max_dead_letters,omitempty"`

	// MaxDeadLetterBytes caps the dead letters' size (payloads, delivery
	// fields and reasons) in Redis; past it the oldest are dropped and
	// counted in dead_letters_trimmed_total{bound="bytes"}. A dead letter
	// larger than the bound on its own is not kept. Default: 256 MiB.
	MaxDeadLetterBytes int64 `json:"max_dead_letter_bytes,omitempty"`

	// LogMaxEntries caps the attempts kept per hook. Default: 500.
	LogMaxEntries int `json:"log_max_entries,omitempty"`

	// LogMaxRequestBody caps the payload kept per attempt; a larger one is
	// logged as {"oversize":true}, as GitLab does, and cannot be resent.
	// Default: 256 KiB.
	LogMaxRequestBody int64 `json:"log_max_request_body,omitempty"`

	// Hooks are declared in configuration (GitOps); they are read-only
	// through the API.
	Hooks []*HookConfig `json:"hooks,omitempty"`

	// Alerts sends the operator's alerts (hooks disabled and back, dead
	// letters, a backlog, Redis down) to their endpoints. Default: none.
	Alerts *AlertsConfig `json:"alerts,omitempty"`

	// EncryptionKey encrypts the secrets of hooks managed through the API
	// (token, URL variable values, custom header values) in Redis with
	// AES-256-GCM: 32 random bytes, base64-encoded (openssl rand -base64 32).
	// Use a placeholder such as {env.WEBHOOKS_ENCRYPTION_KEY}. Required by
	// webhooks_api; Caddy refuses to start when Redis holds hook secrets
	// this key cannot open. Every process sharing the Redis needs the same key.
	EncryptionKey string `json:"encryption_key,omitempty"`

	rt      *engine.Runtime
	poolKey string
	cfg     engine.Config
	hooks   *webhook.HookSet
	logger  *zap.Logger

	spool    *spool.Spool // nil: spool_dir off
	spoolKey string
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "webhooks", New: func() caddy.Module { return new(App) }}
}

// runtimes holds one engine.Runtime per Redis URL and namespace across
// config generations.
var runtimes = caddy.NewUsagePool()

type pooledRuntime struct{ *engine.Runtime }

func (p pooledRuntime) Destruct() error { return p.Close(shutdownGrace) }

// Provision resolves settings and takes a reference on the pooled runtime.
// It does not dial Redis (`caddy validate` runs it too); the first config
// that uses a Redis creates its client, whose pipeline batchers are
// goroutines, but the runtime's workers start only in Start.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	if len(a.RetrySchedule) > 0 && (a.MaxAttempts != 0 || a.RetryBackoff != 0) {
		return fmt.Errorf("retry_schedule sets the attempts and their waits: give it or max_attempts and retry_backoff, not both")
	}
	autoDisable, err := autoDisableOf(a.AutoDisable)
	if err != nil {
		return err
	}
	schedule, err := retrySchedule(a.RetrySchedule)
	if err != nil {
		return err
	}
	if schedule != nil {
		a.MaxAttempts = len(schedule) + 1
	}
	a.setDefaults(repl)
	registerMetrics(ctx)

	network, err := a.networkPolicy()
	if err != nil {
		return err
	}
	hooks, err := buildHooks(a.Hooks, repl, &network)
	if err != nil {
		return err
	}
	if ops, err := a.Alerts.hooks(repl, &network); err != nil {
		return err
	} else if len(ops) > 0 {
		if hooks, err = webhook.NewHookSet(append(hooks.All(), ops...)); err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
	}
	egress, err := a.egress(repl)
	if err != nil {
		return err
	}
	a.hooks = hooks
	a.cfg = engine.Config{
		Send: delivery.SendConfig{
			Instance:        strings.TrimRight(a.Instance, "/"),
			UserAgent:       "GitLab/" + a.GitLabVersion,
			Timeout:         time.Duration(a.Timeout),
			MaxResponseBody: a.MaxResponseBody,
			MaxPayload:      a.MaxPayload,
			Network:         network,
			Egress:          egress,
		},
		Workers: a.Workers,
		Retry: delivery.RetryPolicy{
			MaxAttempts: a.MaxAttempts, Backoff: time.Duration(a.RetryBackoff),
			MaxBackoff: time.Duration(a.MaxRetryBackoff), MaxAge: time.Duration(a.MaxDeliveryAge),
			Schedule: schedule,
		},
		Health: redisstore.HealthPolicy{
			Threshold: a.DisableAfterFailures, Base: time.Duration(a.DisableFor), Max: time.Duration(a.MaxDisableFor),
			Mode: autoDisable.Mode, PermanentAfter: autoDisable.PermanentAfter,
		},
		HookConcurrency: a.HookConcurrency,
		CallsPerMinute:  a.CallsPerMinute,
		RecursionWindow: fanout.RecursionWindow,
		MaxChainHooks:   fanout.MaxChainHooks,
		Silent:          a.SilentMode,
		MaxHandouts:     recovery.MaxHandouts,
		Lease:           time.Duration(a.Lease),
		ClaimInterval:   time.Duration(a.ClaimInterval),
		DeadLetters:     redisstore.DeadLetterLimits{MaxEntries: a.MaxDeadLetters, MaxBytes: a.MaxDeadLetterBytes},
		ReplayRate:      a.ReplayRate,
		Alerts:          a.Alerts.config(),
		Log: hooklog.Policy{
			Retention: time.Duration(a.LogRetention), MaxEntries: a.LogMaxEntries,
			MaxRequestBody: int(min(a.LogMaxRequestBody, 1<<30)),
		},
	}
	if a.cfg.Secrets, err = secretBox(repl.ReplaceKnown(a.EncryptionKey, "")); err != nil {
		return err
	}

	a.poolKey = fmt.Sprint(a.RedisMode, "\x00", a.Redis, "\x00", a.Namespace, "\x00", a.Shards, "\x00", a.ReplicaAcks, "\x00",
		a.RedisCA, "\x00", a.RedisClientCert, "\x00", a.RedisClientKey)
	val, _, err := runtimes.LoadOrNew(a.poolKey, func() (caddy.Destructor, error) {
		store, err := redisstore.New(redisstore.Options{URL: a.Redis, Mode: a.RedisMode, Namespace: a.Namespace, Shards: a.Shards,
			Readers: 2 * a.Shards, ReplicaAcks: a.ReplicaAcks,
			CAFile: a.RedisCA, CertFile: a.RedisClientCert, KeyFile: a.RedisClientKey,
		})
		if err != nil {
			return nil, err
		}
		// The instance ID is stable per data directory, so a restarted
		// process re-reads its own unfinished work at once.
		id, err := caddy.InstanceID()
		if err != nil {
			return nil, fmt.Errorf("reading instance id: %w", err)
		}
		return pooledRuntime{engine.NewRuntime(store, id.String(), a.logger.Named("runtime"))}, nil
	})
	if err != nil {
		a.poolKey = ""
		return fmt.Errorf("setting up redis %s: %w", redisstore.Redact(a.Redis), err)
	}
	a.rt = val.(pooledRuntime).Runtime
	if a.SpoolDir != SpoolOff {
		a.spoolKey = a.SpoolDir
		sp, _, err := spools.LoadOrNew(a.spoolKey, func() (caddy.Destructor, error) {
			return pooledSpool{spool.New(a.SpoolDir, a.Namespace, a.SpoolMaxSize, a.logger.Named("spool"))}, nil
		})
		if err != nil {
			a.spoolKey = ""
			return err
		}
		a.spool = sp.(pooledSpool).Spool
	}
	return nil
}

// retrySchedule reads a retry_schedule (nil: none).
func retrySchedule(waits []caddy.Duration) ([]time.Duration, error) {
	if len(waits) == 0 {
		return nil, nil
	}
	out := make([]time.Duration, len(waits))
	for i, w := range waits {
		out[i] = time.Duration(w)
	}
	return out, webhook.CheckRetrySchedule(out)
}

// autoDisableOf reads an auto_disable setting ("": GitLab's rule).
func autoDisableOf(s string) (webhook.AutoDisable, error) {
	if s == "" {
		return webhook.AutoDisable{Mode: webhook.AutoDisableGitLab}, nil
	}
	return webhook.ParseAutoDisable(s)
}

// networkPolicy is allow_local_requests and allow_networks.
func (a *App) networkPolicy() (delivery.NetworkPolicy, error) {
	network := delivery.NetworkPolicy{AllowLocal: a.AllowLocalRequests}
	for _, s := range a.AllowNetworks {
		n, err := delivery.ParseNetwork(s)
		if err != nil {
			return network, fmt.Errorf("allow_networks: %w", err)
		}
		network.Allow = append(network.Allow, n)
	}
	return network, nil
}

// egress is egress_proxy: a proxy, none ("off"), or the environment's
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, read now as Go reads them).
func (a *App) egress(repl *caddy.Replacer) (delivery.Egress, error) {
	switch s := repl.ReplaceKnown(a.EgressProxy, ""); s {
	case webhook.EgressOff:
		return delivery.Egress{}, nil
	case "":
		env := httpproxy.FromEnvironment()
		if env.HTTPProxy == "" && env.HTTPSProxy == "" {
			return delivery.Egress{}, nil
		}
		for _, p := range []string{env.HTTPProxy, env.HTTPSProxy} {
			if p == "" || !strings.Contains(p, "://") {
				continue // Go reads a bare host:port as http://host:port
			}
			if _, err := webhook.ParseProxy(p); err != nil {
				return delivery.Egress{}, fmt.Errorf("the environment's proxy: %w", err)
			}
		}
		return delivery.Egress{FromEnvironment: env.ProxyFunc()}, nil
	default:
		u, err := webhook.ParseProxy(s)
		if err != nil {
			return delivery.Egress{}, err
		}
		return delivery.Egress{Proxy: u}, nil
	}
}

// spools holds one spool per directory across config generations; a
// reload that changes Redis keeps the spool, and the newest runtime
// replays it.
var spools = caddy.NewUsagePool()

type pooledSpool struct{ *spool.Spool }

func (p pooledSpool) Destruct() error { return p.Close() }

func (a *App) setDefaults(repl *caddy.Replacer) {
	a.Redis = repl.ReplaceKnown(a.Redis, "")
	if a.Redis == "" {
		a.Redis = DefaultRedis
	}
	if a.Namespace == "" {
		a.Namespace = DefaultNamespace
	}
	if a.Shards == 0 {
		a.Shards = DefaultShards
		if a.RedisMode == redisstore.ModeCluster {
			a.Shards = DefaultClusterShards
		}
	}
	a.Instance = repl.ReplaceKnown(a.Instance, "")
	if a.GitLabVersion == "" {
		a.GitLabVersion = DefaultGitLabVersion
	}
	if a.Workers == 0 {
		a.Workers = DefaultWorkers
	}
	if a.Timeout == 0 {
		a.Timeout = caddy.Duration(DefaultTimeout)
	}
	if a.Lease == 0 {
		a.Lease = caddy.Duration(max(DefaultLease, 2*time.Duration(a.Timeout)))
	}
	if a.ClaimInterval == 0 {
		a.ClaimInterval = caddy.Duration(DefaultClaimInterval)
	}
	setDefault(&a.MaxAttempts, 8)
	setDefault(&a.RetryBackoff, caddy.Duration(10*time.Second))
	setDefault(&a.MaxRetryBackoff, caddy.Duration(time.Hour))
	setDefault(&a.MaxDeliveryAge, caddy.Duration(72*time.Hour))
	setDefault(&a.HookConcurrency, 8)
	setDefault(&a.DisableAfterFailures, delivery.DefaultHealthPolicy.Threshold)
	setDefault(&a.DisableFor, caddy.Duration(delivery.DefaultHealthPolicy.Base))
	setDefault(&a.MaxDisableFor, caddy.Duration(delivery.DefaultHealthPolicy.Max))
	if a.MaxResponseBody == 0 {
		a.MaxResponseBody = DefaultMaxResponseBody
	}
	setDefault(&a.MaxPayload, DefaultMaxPayload)
	setDefault(&a.SpoolMaxSize, DefaultSpoolMaxSize)
	setDefault(&a.MaxDeadLetters, redisstore.DefaultMaxDeadLetters)
	setDefault(&a.MaxDeadLetterBytes, redisstore.DefaultMaxDeadLetterBytes)
	a.SpoolDir = repl.ReplaceKnown(a.SpoolDir, "")
	if a.SpoolDir == "" {
		a.SpoolDir = filepath.Join(caddy.AppDataDir(), "webhooks-spool", url.PathEscape(a.Namespace))
	}
}

// Validate checks the settings.
func (a *App) Validate() error {
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	if a.Instance != "" && !strings.HasPrefix(a.Instance, "http://") && !strings.HasPrefix(a.Instance, "https://") {
		return fmt.Errorf("instance %q must be an http(s) base URL", a.Instance)
	}
	if strings.ContainsAny(a.GitLabVersion, " \r\n") {
		return fmt.Errorf("gitlab_version %q must be one word", a.GitLabVersion)
	}
	return nil
}

// Start hands this generation's settings and hooks to the runtime and makes
// sure its workers run. On a reload the runtime is already running: only
// the settings change.
func (a *App) Start() error {
	a.rt.Configure(a.cfg, a.hooks)
	// Before the loops start: the ordered hooks' first capture mark counts
	// what the spool holds.
	failover := engine.Failover{Redis: redisstore.Redact(a.Redis)}
	if a.spool != nil {
		failover.Spooled, failover.Oldest = a.spool.Wake, a.spool.Oldest
	}
	a.rt.SetFailover(failover)
	if err := a.rt.Start(); err != nil {
		return fmt.Errorf("starting webhook runtime: %w", err)
	}
	if a.spool != nil {
		a.spool.SetMaxSize(a.SpoolMaxSize)
		if err := a.spool.Start(a.rt.Replay); err != nil {
			return fmt.Errorf("starting the webhooks spool: %w", err)
		}
	}
	current.Store(a)
	a.logger.Info("webhooks ready", zap.String("redis", redisstore.Redact(a.Redis)),
		zap.String("namespace", a.Namespace), zap.Int("hooks", a.hooks.Len()))
	return nil
}

// Stop does nothing: the runtime outlives a config generation (handlers of
// the old config may still enqueue) and stops when its last user is
// cleaned up.
func (a *App) Stop() error { return nil }

// Cleanup drops this generation's reference on the runtime; the last one
// stops the workers and closes Redis.
func (a *App) Cleanup() error {
	var err error
	if a.spoolKey != "" {
		_, err = spools.Delete(a.spoolKey)
		a.spoolKey = ""
	}
	if a.poolKey == "" {
		return err
	}
	current.CompareAndSwap(a, nil) // unless a newer config took over
	_, rerr := runtimes.Delete(a.poolKey)
	a.poolKey = ""
	return errors.Join(err, rerr)
}

// Runtime returns the app's runtime (nil before Provision).
func (a *App) Runtime() *engine.Runtime { return a.rt }

func registerMetrics(ctx caddy.Context) {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return
	}
	for _, c := range append(engine.Collectors(), spool.Collectors()...) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				ctx.Logger().Warn("registering metric", zap.Error(err))
			}
		}
	}
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// setDefault sets a zero setting to its default.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
