package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Limits GitLab's model applies to hook attributes.
const (
	maxNameLen        = 255
	maxDescriptionLen = 2048
)

// hookInput is what a create or edit request sets; nil: not given.
type hookInput struct {
	url, name, description, token, strategy, filter *string
	signingToken, customWebhookTemplate             *string
	egressProxy, clientCert, clientKey, ca          *string
	ssl, ordered, traceContext                      *bool
	triggers                                        map[gitlab.Trigger]bool
	urlVariables, customHeaders                     map[string]string
	hasURLVariables, hasCustomHeaders, any          bool
	// retrySchedule and autoDisable are ours; an empty schedule or
	// auto_disable "" goes back to the app's.
	retrySchedule *[]time.Duration
	autoDisable   **webhook.AutoDisable
}

func strPtr(p *params, name string, in *hookInput) *string {
	s, ok := p.str(name)
	if !ok {
		return nil
	}
	in.any = true
	return &s
}

// readInput reads the declared parameters of a hook; undeclared ones are
// ignored, as Grape does.
func readInput(p *params, kind webhook.Kind) *hookInput {
	in := &hookInput{triggers: map[gitlab.Trigger]bool{}}
	in.url = strPtr(p, "url", in)
	in.name = strPtr(p, "name", in)
	in.description = strPtr(p, "description", in)
	in.token = strPtr(p, "token", in)
	in.filter = strPtr(p, "push_events_branch_filter", in)
	in.strategy = strPtr(p, "branch_filter_strategy", in)
	if b, ok := p.boolean("enable_ssl_verification"); ok {
		in.ssl, in.any = &b, true
	}
	if b, ok := p.boolean("ordered"); ok { // ours: GitLab's clients leave it out
		in.ordered, in.any = &b, true
	}
	if ws, ok := p.words("retry_schedule"); ok {
		var sched []time.Duration
		if len(ws) > 0 {
			var err error
			if sched, err = webhook.ParseRetrySchedule(ws); err != nil {
				p.errs = append(p.errs, "retry_schedule does not have a valid value ("+err.Error()+")")
			}
		}
		in.retrySchedule, in.any = &sched, true
	}
	if v, ok := p.str("auto_disable"); ok {
		var a *webhook.AutoDisable
		if v != "" {
			ad, err := webhook.ParseAutoDisable(v)
			if err != nil {
				p.errs = append(p.errs, "auto_disable does not have a valid value (gitlab, off or permanent_after <n>)")
			}
			a = &ad
		}
		in.autoDisable, in.any = &a, true
	}
	if b, ok := p.boolean("trace_context"); ok {
		in.traceContext, in.any = &b, true
	}
	for _, t := range triggerFields(kind) {
		if b, ok := p.boolean(t.Field); ok {
			in.triggers[t.Trigger], in.any = b, true
		}
	}
	if in.urlVariables, in.hasURLVariables = p.pairs("url_variables"); in.hasURLVariables {
		in.any = true
	}
	if in.customHeaders, in.hasCustomHeaders = p.pairs("custom_headers"); in.hasCustomHeaders {
		in.any = true
	}
	if in.strategy != nil {
		switch *in.strategy {
		case gitlab.StrategyWildcard, gitlab.StrategyRegex, gitlab.StrategyAllBranches:
		default:
			p.errs = append(p.errs, "branch_filter_strategy does not have a valid value")
		}
	}
	in.signingToken = strPtr(p, "signing_token", in)
	in.customWebhookTemplate = strPtr(p, "custom_webhook_template", in)
	in.egressProxy = strPtr(p, "egress_proxy", in)
	in.clientCert = strPtr(p, "client_cert", in)
	in.clientKey = strPtr(p, "client_key", in)
	in.ca = strPtr(p, "ca", in)
	return in
}

// apply sets the given fields on r; URL variables and custom headers are
// merged. A new signing token keeps the one it replaces signing beside it
// for overlap. When the change moves the hook's deliveries, the secrets the
// request does not give again are cleared (resetSecrets).
func (in *hookInput) apply(r *webhook.HookRecord, overlap time.Duration) {
	oldURL, oldVars := r.URL, maps.Clone(r.URLVariables)
	// The masked URL the API returned, sent back as is (a client that PUTs
	// what it read), leaves the URL unchanged.
	if in.url != nil && *in.url != gitlab.MaskURL(r.URL) {
		r.URL = *in.url
	}
	if in.name != nil {
		r.Name = *in.name
	}
	if in.description != nil {
		r.Description = *in.description
	}
	if in.token != nil {
		r.Token = *in.token
	}
	r.Signing = r.Signing.Expire(nowUTC())
	if in.signingToken != nil {
		r.Signing = r.Signing.Rotate(*in.signingToken, nowUTC(), overlap)
	}
	if in.customWebhookTemplate != nil {
		r.CustomWebhookTemplate = *in.customWebhookTemplate
	}
	if in.strategy != nil {
		r.BranchFilterStrategy = *in.strategy
	}
	if in.filter != nil {
		r.PushEventsBranchFilter = *in.filter
	}
	if r.BranchFilterStrategy == gitlab.StrategyAllBranches {
		r.PushEventsBranchFilter = "" // GitLab's set_branch_filter_nil
	}
	if in.ssl != nil {
		r.EnableSSLVerification = *in.ssl
	}
	if in.ordered != nil {
		r.Ordered = *in.ordered
	}
	if in.retrySchedule != nil {
		r.RetrySchedule = *in.retrySchedule
	}
	if in.autoDisable != nil {
		r.AutoDisable = *in.autoDisable
	}
	if in.traceContext != nil {
		r.NoTraceContext = !*in.traceContext
	}
	// The masked proxy the API returned, sent back as is, leaves it as it is.
	if in.egressProxy != nil && *in.egressProxy != gitlab.MaskURL(r.EgressProxy) {
		r.EgressProxy = *in.egressProxy
	}
	setIf(&r.ClientCert, in.clientCert)
	setIf(&r.ClientKey, in.clientKey)
	setIf(&r.CA, in.ca)
	if len(in.triggers) > 0 {
		var set gitlab.TriggerSet
		for _, t := range r.Triggers {
			if tr, ok := gitlab.ParseTrigger(t); ok {
				set.Add(tr)
			}
		}
		var next gitlab.TriggerSet
		for _, t := range set.List() {
			if on, given := in.triggers[t]; !given || on {
				next.Add(t)
			}
		}
		for t, on := range in.triggers {
			if on {
				next.Add(t)
			}
		}
		r.Triggers = r.Triggers[:0]
		for _, t := range next.List() {
			r.Triggers = append(r.Triggers, string(t))
		}
	}
	r.URLVariables = merge(r.URLVariables, in.urlVariables)
	r.CustomHeaders = merge(r.CustomHeaders, in.customHeaders)
	resetSecrets(r, oldURL, oldVars,
		given{token: in.token != nil, signingToken: in.signingToken != nil, urlVariables: in.urlVariables, customHeaders: in.customHeaders,
			clientTLS: in.clientCert != nil || in.clientKey != nil})
}

func setIf(dst, v *string) {
	if v != nil {
		*dst = *v
	}
}

func merge(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// validationError is a 422 in GitLab's words; blocked says the URL leads
// to a local address (or does not resolve).
type validationError struct {
	msg     string
	blocked bool
}

func (e *validationError) Error() string { return e.msg }

// validate checks a hook as GitLab's model does (webhook.Hook.Validate),
// with GitLab's messages in the order GitLab reports them: URL (its
// address against the network policy included, a name resolved), branch
// filter, custom headers, then the rest. ns is the hook's owner, for a
// hook not stored yet.
func validate(ctx context.Context, r *webhook.HookRecord, ns webhook.Namespace, create bool, network *delivery.NetworkPolicy) error {
	bad := func(msg string) error { return &validationError{msg: msg} }
	rec := *r
	rec.Kind, rec.Path = ns.Kind, ns.Path
	_, err := rec.Hook()
	var inv *webhook.InvalidError
	if err != nil && !errors.As(err, &inv) {
		return err
	}
	var msgs []string
	if inv != nil {
		switch {
		case inv.Has(webhook.BadScope):
			return bad(inv.Error())
		case inv.Has(webhook.BadURL):
			return bad("Invalid url given")
		}
	}
	if err := blockedURL(ctx, r, network); err != nil {
		return err
	}
	if err := blockedProxy(ctx, r, network); err != nil {
		return err
	}
	if inv != nil {
		switch {
		case inv.Has(webhook.BadBranchFilter):
			return bad("Invalid branch filter given")
		case inv.Has(webhook.BadCustomHeaders) && create:
			return bad("Custom headers must be a valid json schema")
		case inv.Has(webhook.BadCustomHeaders):
			return bad("Custom headers validation failed")
		}
		if inv.Has(webhook.BadURLVariables) {
			msgs = append(msgs, "Url variables must be a valid json schema")
		}
		if inv.Has(webhook.BadToken) {
			msgs = append(msgs, "Token must not contain control characters")
		}
		msgs = append(msgs, featureMessages(inv)...)
	}
	if len(r.Name) > maxNameLen {
		msgs = append(msgs, fmt.Sprintf("Name is too long (maximum is %d characters)", maxNameLen))
	}
	if len(r.Description) > maxDescriptionLen {
		msgs = append(msgs, fmt.Sprintf("Description is too long (maximum is %d characters)", maxDescriptionLen))
	}
	if len(msgs) > 0 {
		return bad(toSentence(msgs))
	}
	return nil
}

// toSentence joins as Rails' Array#to_sentence.
func toSentence(s []string) string {
	switch len(s) {
	case 1:
		return s[0]
	case 2:
		return s[0] + " and " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + ", and " + s[len(s)-1]
}

// blockedURL refuses a URL (variables filled in) that leads to a local
// address or whose host does not resolve, with the message GitLab's
// public_url validator gives (GitLab's API itself only says "Invalid url
// given"; the reason is what its UI shows).
func blockedURL(ctx context.Context, r *webhook.HookRecord, network *delivery.NetworkPolicy) error {
	var be *delivery.BlockedError
	if errors.As(network.CheckSavedURL(ctx, r.URL, r.URLVariables), &be) {
		return &validationError{msg: "Url is blocked: " + be.Reason, blocked: true}
	}
	return nil
}

// blockedProxy refuses a hook's own proxy that the network policy would
// refuse as a receiver: requests to it carry the hook's deliveries to
// wherever it is, so a local address would let the hook reach a local
// service (the operator's proxies, in the configuration, are not checked).
func blockedProxy(ctx context.Context, r *webhook.HookRecord, network *delivery.NetworkPolicy) error {
	if r.EgressProxy == "" || r.EgressProxy == webhook.EgressOff {
		return nil
	}
	if _, err := webhook.ParseProxy(r.EgressProxy); err != nil {
		return nil // reported with the other problems
	}
	var be *delivery.BlockedError
	if errors.As(network.CheckSavedURL(ctx, r.EgressProxy, nil), &be) {
		return &validationError{msg: "Egress proxy is blocked: " + be.Reason, blocked: true}
	}
	return nil
}

func (q *request) limit() int {
	if q.ns.Kind == webhook.KindGroup {
		return q.h.opt.MaxGroupHooks
	}
	return q.h.opt.MaxProjectHooks
}

func (q *request) list() {
	p, ok := q.params()
	if !ok {
		return
	}
	recs, err := q.h.repo.ListHooks(q.r.Context(), q.ns)
	if err != nil {
		q.storeError("listing hooks", err)
		return
	}
	for _, hk := range q.h.configHooks(q.ns) {
		recs = append(recs, recordOf(hk, q.ns))
	}
	lo, hi, ok := q.paginate(p, len(recs))
	if !ok {
		return
	}
	out := make([]object, 0, hi-lo)
	for _, r := range recs[lo:hi] {
		out = append(out, entity(r, false, q.health(r.ID), q.orderedQueue(r)))
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (q *request) create() {
	p, ok := q.params()
	if !ok {
		return
	}
	if !p.has("url") {
		p.errs = append([]string{"url is missing"}, p.errs...)
	}
	in := readInput(p, q.ns.Kind)
	if p.failed(q.w) {
		return
	}
	r := &webhook.HookRecord{
		Triggers:              []string{string(gitlab.Push)}, // push_events defaults to true
		EnableSSLVerification: true,
		BranchFilterStrategy:  gitlab.StrategyWildcard,
		CreatedAt:             nowUTC(),
	}
	in.apply(r, q.h.opt.signingOverlap())
	if err := validate(q.r.Context(), r, q.ns, true, &q.h.opt.Network); err != nil {
		writeError(q.w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if !q.claimNamespace() {
		return
	}
	err := q.h.repo.CreateHook(q.r.Context(), q.ns, r, q.limit())
	if errors.Is(err, redisstore.ErrHookLimit) {
		writeError(q.w, http.StatusUnprocessableEntity,
			fmt.Sprintf("Maximum number of %s hooks (%d) exceeded", q.ns.Kind, q.limit()))
		return
	}
	q.saved("creating a hook", err, http.StatusCreated, r)
}

// saved answers a create or an edit that passed validation: the store's
// error, or the hook as saved.
func (q *request) saved(what string, err error, status int, r *webhook.HookRecord) {
	if err != nil {
		q.storeError(what, err)
		return
	}
	q.changed()
	writeJSON(q.w, status, entity(r, true, q.health(r.ID), q.orderedQueue(r)))
}

// find returns the hook of the route: stored, or configured (read-only).
func (q *request) find() (rec *webhook.HookRecord, cfg *webhook.Hook, ok bool) {
	if q.hookID <= webhook.MaxHookID {
		rec, err := q.h.repo.GetHook(q.r.Context(), q.ns, q.hookID)
		if err == nil {
			return rec, nil, true
		}
		if !errors.Is(err, redisstore.ErrHookNotFound) {
			q.storeError("reading a hook", err)
			return nil, nil, false
		}
	}
	for _, hk := range q.h.configHooks(q.ns) {
		if hk.ID == q.hookID {
			return recordOf(hk, q.ns), hk, true
		}
	}
	writeMessage(q.w, http.StatusNotFound, "404 Not found")
	return nil, nil, false
}

// readOnly answers 403 for a configured hook.
func (q *request) readOnly() {
	writeMessage(q.w, http.StatusForbidden, fmt.Sprintf(
		"403 Forbidden - hook %d is declared in the Caddy configuration and is read-only through the API", q.hookID))
}

func (q *request) get() {
	rec, _, ok := q.find()
	if !ok {
		return
	}
	writeJSON(q.w, http.StatusOK, entity(rec, true, q.health(rec.ID), q.orderedQueue(rec)))
}

func (q *request) update() {
	p, ok := q.params()
	if !ok {
		return
	}
	in := readInput(p, q.ns.Kind)
	if p.failed(q.w) {
		return
	}
	if !q.findWritable() {
		return
	}
	if !in.any {
		writeError(q.w, http.StatusBadRequest, "No parameters provided")
		return
	}
	rec, err := q.h.repo.UpdateHook(q.r.Context(), q.ns, q.hookID, func(r *webhook.HookRecord) error {
		in.apply(r, q.h.opt.signingOverlap())
		return validate(q.r.Context(), r, q.ns, false, &q.h.opt.Network)
	})
	var ve *validationError
	if errors.As(err, &ve) {
		writeError(q.w, http.StatusUnprocessableEntity, ve.msg)
		return
	}
	q.saved("updating a hook", err, http.StatusOK, rec)
}

func (q *request) delete() {
	if !q.findWritable() {
		return
	}
	if err := q.h.repo.DeleteHook(q.r.Context(), q.ns, q.hookID); err != nil {
		q.storeError("deleting a hook", err)
		return
	}
	if err := q.h.rt.DropOrdered(q.r.Context(), q.hookID); err != nil {
		q.h.log.Warn("dropping a deleted hook's ordered queue failed; its deliveries are dropped as they come up",
			zap.Int64("hook_id", q.hookID), zap.Error(err))
	}
	q.changed()
	q.w.WriteHeader(http.StatusNoContent)
}

// findWritable finds the hook a change is for; configured hooks are
// read-only. It has answered the request when it returns false.
func (q *request) findWritable() bool {
	_, cfg, ok := q.find()
	if ok && cfg != nil {
		q.readOnly()
		return false
	}
	return ok
}
