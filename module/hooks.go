package module

import (
	"fmt"
	"hash/fnv"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// HookConfig declares a hook in the configuration. Field names follow
// GitLab's hooks API where one exists.
type HookConfig struct {
	// Name identifies the hook in logs; unique among configured hooks.
	Name string `json:"name"`

	// ID is the hook's numeric ID. Default: derived from Name, in a range
	// (2^52 and up) that API-created hooks never reach.
	ID int64 `json:"id,omitempty"`

	// URL receives the deliveries. It may hold {name} references to
	// URLVariables, which keep secret parts out of logs.
	URL string `json:"url"`

	// Token is sent as X-Gitlab-Token. Placeholders such as {env.HOOK_TOKEN}
	// are resolved; keep secrets in the environment, not the config.
	Token string `json:"token,omitempty"`

	// Project is the full path of the project whose events the hook
	// receives. Exactly one of Project and Group is set.
	Project string `json:"project,omitempty"`

	// Group is the full path of the group whose events — its own and those
	// of every subgroup and project below it — the hook receives.
	Group string `json:"group,omitempty"`

	// Events are the triggers the hook enables: push, tag_push, issues,
	// confidential_issues, note, confidential_note, merge_requests,
	// wiki_page, pipeline, job, deployment, feature_flag, releases,
	// milestone, emoji, resource_access_token, resource_deploy_token,
	// vulnerability, and for group hooks member, subgroup, project.
	// GitLab's field names (push_events) are accepted too. Default: push.
	Events []string `json:"events,omitempty"`

	// BranchFilterStrategy is wildcard (default), regex or all_branches.
	BranchFilterStrategy string `json:"branch_filter_strategy,omitempty"`

	// PushEventsBranchFilter limits push events to matching branches.
	PushEventsBranchFilter string `json:"push_events_branch_filter,omitempty"`

	// EnableSSLVerification checks the receiver's TLS certificate.
	// Default: true.
	EnableSSLVerification *bool `json:"enable_ssl_verification,omitempty"`

	// URLVariables are substituted for {name} in URL at delivery time.
	// Values may use placeholders.
	URLVariables map[string]string `json:"url_variables,omitempty"`

	// CustomHeaders are added to every delivery; GitLab's own headers win.
	// Values may use placeholders.
	CustomHeaders map[string]string `json:"custom_headers,omitempty"`

	// SigningToken signs every delivery with the Standard Webhooks headers
	// (webhook-id, webhook-timestamp, webhook-signature), as GitLab 19's
	// signing_token: whsec_ and the base64 of a 32-byte key. Placeholders
	// such as {env.HOOK_SIGNING_TOKEN} are resolved. Default: none.
	SigningToken string `json:"signing_token,omitempty"`

	// CustomWebhookTemplate is sent instead of the event's payload, its
	// {{path.to.field}} references filled in from the payload, JSON-escaped
	// (GitLab's custom_webhook_template). At most 4096 characters. Not
	// rendered when the configuration loads, as GitLab does not render it
	// on save: a broken template makes each attempt an internal error.
	// Default: none, the payload is sent.
	CustomWebhookTemplate string `json:"custom_webhook_template,omitempty"`

	// Ordered sends the hook's deliveries one at a time, in the order
	// their events were captured, across every Caddy sharing the Redis: a
	// failing delivery holds the ones behind it until it is delivered,
	// dead-lettered or the hook is disabled. Throughput is then one
	// delivery per receiver round trip. Beyond GitLab. Default: false.
	Ordered bool `json:"ordered,omitempty"`

	// RetrySchedule, when set, are this hook's waits before each retry,
	// instead of the app's retry policy (see the app's retry_schedule).
	RetrySchedule []caddy.Duration `json:"retry_schedule,omitempty"`

	// AutoDisable, when set, is how failures disable this hook, instead of
	// the app's auto_disable: gitlab, off or permanent_after <n>.
	AutoDisable string `json:"auto_disable,omitempty"`
	// TraceContext sends the W3C traceparent and tracestate headers with
	// each delivery of an event captured in a trace (Caddy's tracing
	// handler before webhooks_capture), so a receiver that traces joins
	// it; false keeps them off (the delivery's span is still recorded).
	// Default: true.
	TraceContext *bool `json:"trace_context,omitempty"`

	// EgressProxy is the forward proxy of this hook's deliveries (an http,
	// https or socks5 URL, as the app's egress_proxy), or "off" to send
	// them straight to the receiver. Placeholders are resolved. Default:
	// the app's egress_proxy (or the environment's).
	EgressProxy string `json:"egress_proxy,omitempty"`

	// ClientCert and ClientKey are PEM files of the client certificate
	// the hook presents to a receiver that requires one (mutual TLS); both
	// or neither. Placeholders are resolved. Default: none.
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key,omitempty"`

	// CA is a PEM file of the CA certificates that verify the receiver's
	// certificate instead of the system's roots (a receiver with a private
	// CA). Placeholders are resolved. Default: the system's roots.
	CA string `json:"ca,omitempty"`
}

// configHookIDBase keeps configured hook IDs apart from API-assigned ones
// while staying below 2^53, the largest integer JSON clients read exactly.
const configHookIDBase = int64(1) << 52

// configHookID is the ID of a configured hook without one: derived from
// key (its name), so it stays the same across reloads.
func configHookID(key string) int64 {
	f := fnv.New64a()
	f.Write([]byte(key))
	return configHookIDBase | int64(f.Sum64()&uint64(configHookIDBase-1))
}

func buildHooks(cfgs []*HookConfig, repl *caddy.Replacer, network *delivery.NetworkPolicy) (*webhook.HookSet, error) {
	hooks := make([]*webhook.Hook, 0, len(cfgs))
	names := map[string]bool{}
	for i, c := range cfgs {
		h, err := c.build(repl, network)
		if err != nil {
			name := c.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return nil, fmt.Errorf("hook %s: %w", name, err)
		}
		if names[h.Name] {
			return nil, fmt.Errorf("two hooks are named %q", h.Name)
		}
		names[h.Name] = true
		hooks = append(hooks, h)
	}
	set, err := webhook.NewHookSet(hooks)
	if err != nil {
		return nil, err
	}
	return set, nil
}

func (c *HookConfig) build(repl *caddy.Replacer, network *delivery.NetworkPolicy) (*webhook.Hook, error) {
	if strings.TrimSpace(c.Name) == "" {
		return nil, fmt.Errorf("name is required")
	}
	h := &webhook.Hook{
		ID: c.ID, Name: c.Name, Project: c.Project, Group: c.Group,
		URL: repl.ReplaceKnown(c.URL, ""), Token: repl.ReplaceKnown(c.Token, ""),
		Signing:               gitlab.SigningTokens{Current: repl.ReplaceKnown(c.SigningToken, "")},
		CustomWebhookTemplate: c.CustomWebhookTemplate,
		EnableSSLVerification: c.EnableSSLVerification == nil || *c.EnableSSLVerification,
		NoTraceContext:        c.TraceContext != nil && !*c.TraceContext,
		ReadOnly:              true,
		Ordered:               c.Ordered,
	}
	if h.ID == 0 {
		h.ID = configHookID(c.Name)
	}
	events := c.Events
	if len(events) == 0 {
		events = []string{string(gitlab.Push)}
	}
	for _, e := range events {
		t, ok := gitlab.ParseTrigger(e)
		if !ok || t.ChatOnly() {
			return nil, fmt.Errorf("unknown event %q", e)
		}
		if t.GroupOnly() && h.Group == "" {
			return nil, fmt.Errorf("%s events are for group hooks only", t)
		}
		h.Triggers.Add(t)
	}
	var err error
	if h.BranchFilter, err = gitlab.NewBranchFilter(c.BranchFilterStrategy, c.PushEventsBranchFilter); err != nil {
		return nil, err
	}
	h.URLVariables = resolveAll(c.URLVariables, repl)
	h.CustomHeaders = resolveAll(c.CustomHeaders, repl)
	if h.RetrySchedule, err = retrySchedule(c.RetrySchedule); err != nil {
		return nil, err
	}
	if c.AutoDisable != "" {
		a, err := webhook.ParseAutoDisable(c.AutoDisable)
		if err != nil {
			return nil, err
		}
		h.AutoDisable = &a
	}
	h.EgressProxy = repl.ReplaceKnown(c.EgressProxy, "")
	if h.TLS, err = c.clientTLS(repl); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	// Checked on the URL as it will be sent (placeholders and variables
	// filled in), as GitLab checks a hook URL when it is saved; the text is
	// masked, as a variable may hold the host. A name is not resolved
	// here (a DNS outage must not stop Caddy): each connection is checked.
	if err := network.CheckURL(h.URL, h.URLVariables); err != nil {
		return nil, fmt.Errorf("url %s: %s", h.MaskedURL(), hooklog.MaskSecrets(h, err.Error()))
	}
	return h, nil
}

// clientTLS reads the hook's client_cert, client_key and ca files.
func (c *HookConfig) clientTLS(repl *caddy.Replacer) (*webhook.ClientTLS, error) {
	t := &webhook.ClientTLS{}
	for _, f := range []struct {
		option, path string
		dst          *string
	}{{"client_cert", c.ClientCert, &t.Cert}, {"client_key", c.ClientKey, &t.Key}, {"ca", c.CA, &t.CA}} {
		path := repl.ReplaceKnown(f.path, "")
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.option, err)
		}
		*f.dst = string(b)
	}
	if t.IsZero() {
		return nil, nil
	}
	return t, nil
}

func resolveAll(m map[string]string, repl *caddy.Replacer) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = repl.ReplaceKnown(v, "")
	}
	return out
}
