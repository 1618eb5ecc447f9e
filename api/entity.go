package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// object is a JSON object that keeps its keys in order, so responses read
// like GitLab's.
type object []field

type field struct {
	k string
	v any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// triggerFields lists the boolean trigger fields of a project or a group
// hook, in GitLab's table order. Project hooks have no group-only triggers.
func triggerFields(kind webhook.Kind) []gitlab.TriggerInfo {
	var out []gitlab.TriggerInfo
	for _, t := range gitlab.Triggers() {
		if t.GroupOnly && kind != webhook.KindGroup {
			continue
		}
		out = append(out, t)
	}
	return out
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func keysOf(m map[string]string) []object {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]object, 0, len(keys))
	for _, k := range keys {
		out = append(out, object{{"key", k}})
	}
	return out
}

// timeFormat is how GitLab writes timestamps: UTC with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

// entity renders a hook as GitLab's ProjectHook or GroupHook entity, with
// our extensions after GitLab's fields. The token, the values of URL
// variables and custom headers, the client key and the egress proxy's
// credentials never appear.
// full adds url_variables and custom_headers (GitLab leaves them out of
// project hook lists). hh is the hook's health: alert_status is
// executable, temporarily_disabled or disabled, and disabled_until is set
// while temporarily disabled. oq is the queue of an ordered hook (nil:
// none), shown as ordered_queue beside our ordered field.
func entity(r *webhook.HookRecord, full bool, hh delivery.HookHealth, oq *redisstore.OrderedState) object {
	o := object{
		{"id", r.ID},
		{"url", gitlab.MaskURL(r.URL)},
		{"name", nullIfEmpty(r.Name)},
		{"description", nullIfEmpty(r.Description)},
	}
	if r.Kind == webhook.KindGroup {
		o = append(o, field{"group_id", r.NamespaceID})
	} else {
		o = append(o, field{"project_id", r.NamespaceID})
	}
	var created any
	if !r.CreatedAt.IsZero() {
		created = r.CreatedAt.UTC().Format(timeFormat)
	}
	o = append(o, field{"created_at", created})
	enabled := map[string]bool{}
	for _, t := range r.Triggers {
		enabled[t] = true
	}
	for _, t := range triggerFields(r.Kind) {
		o = append(o, field{t.Field, enabled[string(t.Trigger)]})
	}
	strategy := r.BranchFilterStrategy
	if strategy == "" {
		strategy = gitlab.StrategyWildcard
	}
	o = append(o,
		field{"repository_update_events", false},
		field{"push_events_branch_filter", r.PushEventsBranchFilter},
		field{"branch_filter_strategy", strategy},
		field{"enable_ssl_verification", r.EnableSSLVerification},
		field{"alert_status", hh.AlertStatus},
		field{"disabled_until", disabledUntil(hh)},
		field{"custom_webhook_template", nullIfEmpty(r.CustomWebhookTemplate)},
		field{"token_present", r.Token != ""},
		field{"signing_token_present", r.Signing.Current != ""},
		field{"trace_context", !r.NoTraceContext},
		field{"egress_proxy", nullIfEmpty(gitlab.MaskURL(r.EgressProxy))},
		field{"client_cert", nullIfEmpty(r.ClientCert)},
		field{"client_key_present", r.ClientKey != ""},
		field{"ca", nullIfEmpty(r.CA)},
	)
	if full || r.Kind == webhook.KindGroup {
		o = append(o, field{"url_variables", keysOf(r.URLVariables)}, field{"custom_headers", keysOf(r.CustomHeaders)})
	}
	o = append(o, field{"ordered", r.Ordered})
	var sched any // null: the app's retry policy
	if r.RetrySchedule != nil {
		sched = webhook.FormatRetrySchedule(r.RetrySchedule)
	}
	var auto any // null: the app's auto_disable
	if r.AutoDisable != nil {
		auto = r.AutoDisable.String()
	}
	o = append(o, field{"retry_schedule", sched}, field{"auto_disable", auto})
	if oq != nil {
		o = append(o, field{"ordered_queue", orderedQueueEntity(oq)})
	}
	return o
}

// orderedQueueEntity shows an ordered hook's queue: how many deliveries
// wait, and the head that holds them when it failed (blocked_by, null
// otherwise).
func orderedQueueEntity(oq *redisstore.OrderedState) object {
	var blocked any
	if b := oq.Blocked; b != nil {
		var next any
		if !b.NextAt.IsZero() {
			next = b.NextAt.UTC().Format(timeFormat)
		}
		blocked = object{
			{"event_id", b.EventID},
			{"since", b.Since.UTC().Format(timeFormat)},
			{"attempts", b.Attempts},
			{"last_status", b.LastStatus},
			{"next_attempt_at", next},
		}
	}
	return object{{"pending", oq.Pending}, {"blocked_by", blocked}}
}

// recordOf describes a configured hook the way stored ones are, for display.
func recordOf(h *webhook.Hook, ns webhook.Namespace) *webhook.HookRecord {
	r := &webhook.HookRecord{
		ID: h.ID, Kind: ns.Kind, Path: ns.Path, NamespaceID: ns.ID, Name: h.Name, URL: h.URL,
		Token: h.Token, BranchFilterStrategy: h.BranchFilter.Strategy(),
		PushEventsBranchFilter: h.BranchFilter.Filter(), EnableSSLVerification: h.EnableSSLVerification,
		URLVariables: h.URLVariables, CustomHeaders: h.CustomHeaders,
		Signing: h.Signing, CustomWebhookTemplate: h.CustomWebhookTemplate, NoTraceContext: h.NoTraceContext,
		EgressProxy: h.EgressProxy, Ordered: h.Ordered, RetrySchedule: h.RetrySchedule, AutoDisable: h.AutoDisable,
	}
	if h.TLS != nil {
		r.ClientCert, r.ClientKey, r.CA = h.TLS.Cert, h.TLS.Key, h.TLS.CA
	}
	for _, t := range h.Triggers.List() {
		r.Triggers = append(r.Triggers, string(t))
	}
	return r
}

// configHooks returns the configured (read-only) hooks of ns.
func (h *Handler) configHooks(ns webhook.Namespace) []*webhook.Hook {
	var out []*webhook.Hook
	for _, hk := range h.rt.Hooks().All() {
		if !hk.ReadOnly {
			continue
		}
		path := hk.Project
		if ns.Kind == webhook.KindGroup {
			path = hk.Group
		}
		if path != "" && strings.EqualFold(path, ns.Path) {
			out = append(out, hk)
		}
	}
	slices.SortFunc(out, func(a, b *webhook.Hook) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// nowUTC is the clock, replaceable in tests.
var nowUTC = func() time.Time { return time.Now().UTC() }

func disabledUntil(hh delivery.HookHealth) any {
	if hh.DisabledUntil == nil {
		return nil
	}
	return hh.DisabledUntil.UTC().Format(timeFormat)
}

// orderedQueue reads the queue of an ordered hook (or of a hook that was
// ordered and still has one); nil otherwise, or on a Redis error.
func (q *request) orderedQueue(r *webhook.HookRecord) *redisstore.OrderedState {
	st, err := q.h.rt.OrderedState(q.r.Context(), r.ID)
	if err != nil || (!r.Ordered && st.Pending == 0) {
		return nil
	}
	return &st
}

// health reads a hook's state; on a Redis error the hook is shown
// executable rather than failing the request.
func (q *request) health(id int64) delivery.HookHealth {
	hh, err := q.h.rt.HookHealth(q.r.Context(), id)
	if err != nil || hh.AlertStatus == "" {
		return delivery.HookHealth{AlertStatus: delivery.AlertExecutable}
	}
	return hh
}
