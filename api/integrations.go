package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// IntegrationRepository stores the chat integrations (GitLab's Slack,
// Mattermost, Discord, Microsoft Teams, Google Chat and Webex Teams
// notifications).
// *redisstore.IntegrationStore implements it.
type IntegrationRepository interface {
	GetIntegration(ctx context.Context, ns webhook.Namespace, service string) (*webhook.IntegrationRecord, error)
	PutIntegration(ctx context.Context, ns webhook.Namespace, service string,
		fn func(r *webhook.IntegrationRecord, created bool) error) (*webhook.IntegrationRecord, bool, error)
	DeleteIntegration(ctx context.Context, ns webhook.Namespace, service string) error
}

// integrationRoute is a matched integrations request:
// /projects|groups/:id/integrations|services[/:slug]. GitLab serves both
// spellings; its Go client still uses "services".
type integrationRoute struct {
	kind    webhook.Kind
	rawID   string
	service chat.Service // "" for the list
	test    bool         // …/:slug/test
}

func matchIntegration(escapedPath string) (integrationRoute, bool) {
	rest, ok := strings.CutPrefix(escapedPath, "/")
	if !ok {
		return integrationRoute{}, false
	}
	segs := strings.Split(rest, "/")
	if len(segs) < 3 || len(segs) > 5 || segs[1] == "" || (segs[2] != "integrations" && segs[2] != "services") ||
		(len(segs) == 5 && segs[4] != "test") {
		return integrationRoute{}, false
	}
	kind, ok := webhook.KindOfSegment(segs[0])
	if !ok {
		return integrationRoute{}, false
	}
	ir := integrationRoute{kind: kind, rawID: segs[1]}
	if len(segs) >= 4 {
		if ir.service, ok = chat.ParseService(segs[3]); !ok {
			return integrationRoute{}, false
		}
	}
	ir.test = len(segs) == 5
	return ir, true
}

// serveIntegration answers an integrations request, with the hooks API's
// method, cross-site, authentication and namespace rules.
func (h *Handler) serveIntegration(w http.ResponseWriter, r *http.Request, ir integrationRoute) {
	if h.opt.Integrations == nil {
		writeError(w, http.StatusNotFound, "404 Not Found")
		return
	}
	allowed := []string{http.MethodGet}
	switch {
	case ir.test:
		allowed = []string{http.MethodPut}
	case ir.service != "":
		allowed = []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	}
	method, p, ok := h.admit(w, r, allowed)
	if !ok {
		return
	}
	ns, ok := h.namespace(w, r, route{kind: ir.kind, rawID: ir.rawID}, p)
	if !ok {
		return
	}
	q := &integrationRequest{h: h, w: w, r: r, ns: ns, service: ir.service, scope: p.scopeOf(ns.Path), caller: p.name}
	switch {
	case ir.test:
		q.test()
	case ir.service == "":
		q.list()
	case method == http.MethodGet:
		q.get()
	case method == http.MethodPut:
		q.put()
	default:
		q.delete()
	}
}

type integrationRequest struct {
	h       *Handler
	w       http.ResponseWriter
	r       *http.Request
	ns      webhook.Namespace
	service chat.Service
	scope   string // the principal's scope covering the path; "" for all
	caller  string // the principal's name, for rate limits
}

// effective returns the integration in effect for ns: its own, or for a
// project the one of its nearest group (inherited), as GitLab's
// integration inheritance.
func (q *integrationRequest) effective(svc chat.Service) (*webhook.IntegrationRecord, bool, error) {
	repo, ctx := q.h.opt.Integrations, q.r.Context()
	rec, err := repo.GetIntegration(ctx, q.ns, string(svc))
	if err == nil || !errors.Is(err, redisstore.ErrIntegrationNotFound) {
		return rec, false, err
	}
	for path := parentPath(q.ns.Path); path != ""; path = parentPath(path) {
		rec, err := repo.GetIntegration(ctx, webhook.Namespace{Kind: webhook.KindGroup, Path: path}, string(svc))
		if err == nil {
			return rec, true, nil
		}
		if !errors.Is(err, redisstore.ErrIntegrationNotFound) {
			return nil, false, err
		}
	}
	return nil, false, redisstore.ErrIntegrationNotFound
}

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (q *integrationRequest) get() {
	rec, inherited, err := q.effective(q.service)
	if errors.Is(err, redisstore.ErrIntegrationNotFound) {
		writeMessage(q.w, http.StatusNotFound, "404 Integration Not Found")
		return
	}
	if err != nil {
		q.storeError("reading an integration", err)
		return
	}
	writeJSON(q.w, http.StatusOK, integrationEntityOf(rec, inherited, true))
}

func (q *integrationRequest) list() {
	out := []*integrationEntity{}
	for _, svc := range chat.Services {
		rec, inherited, err := q.effective(svc)
		if errors.Is(err, redisstore.ErrIntegrationNotFound) {
			continue
		}
		if err != nil {
			q.storeError("listing integrations", err)
			return
		}
		out = append(out, integrationEntityOf(rec, inherited, false))
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (q *integrationRequest) delete() {
	err := q.h.opt.Integrations.DeleteIntegration(q.r.Context(), q.ns, string(q.service))
	if errors.Is(err, redisstore.ErrIntegrationNotFound) {
		writeMessage(q.w, http.StatusNotFound, "404 Integration Not Found")
		return
	}
	if err != nil {
		q.storeError("deleting an integration", err)
		return
	}
	q.changed(0)
	q.w.WriteHeader(http.StatusNoContent)
}

func (q *integrationRequest) put() {
	p, ok := q.hookRequest().params()
	if !ok {
		return
	}
	inherit, _ := p.boolean("use_inherited_settings")
	in := readIntegrationInput(p, q.service, q.ns.Kind == webhook.KindGroup)
	if p.failed(q.w) {
		return
	}
	if inherit {
		q.inherit()
		return
	}
	claimed := true
	rec, _, err := q.h.opt.Integrations.PutIntegration(q.r.Context(), q.ns, string(q.service),
		func(r *webhook.IntegrationRecord, created bool) error {
			if created {
				if in.webhook == nil {
					return &paramError{"webhook is missing"}
				}
				setIntegrationDefaults(r, q.service)
			}
			in.apply(r)
			if err := q.validate(r); err != nil {
				return err
			}
			// The write goes ahead: only now does a new owner get its id.
			if r.NamespaceID == 0 {
				hq := q.hookRequest()
				if claimed = hq.claimNamespace(); !claimed {
					return errAnswered
				}
				q.ns, r.NamespaceID = hq.ns, hq.ns.ID
			}
			return nil
		})
	if !claimed {
		return
	}
	var pe *paramError
	if errors.As(err, &pe) {
		writeError(q.w, http.StatusBadRequest, pe.msg)
		return
	}
	var ve *validationError
	if errors.As(err, &ve) {
		writeMessage(q.w, http.StatusBadRequest, ve.msg)
		return
	}
	if err != nil {
		q.storeError("saving an integration", err)
		return
	}
	q.changed(rec.DeliveryID())
	writeJSON(q.w, http.StatusOK, integrationEntityOf(rec, false, true))
}

// inherit drops the integration's own settings so that its group's apply
// (GitLab's use_inherited_settings) and answers what is now in effect.
func (q *integrationRequest) inherit() {
	err := q.h.opt.Integrations.DeleteIntegration(q.r.Context(), q.ns, string(q.service))
	if err != nil && !errors.Is(err, redisstore.ErrIntegrationNotFound) {
		q.storeError("dropping an integration's own settings", err)
		return
	}
	q.changed(0)
	q.get()
}

// paramError is a missing or malformed parameter (Grape's 400 "error").
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

// setIntegrationDefaults are GitLab's defaults of a new chat integration
// (its integrations table's column defaults): the events of pushes, tag
// pushes, issues, merge requests, comments, pipelines and wiki pages the
// service takes; broken pipelines only; the default branch only.
func setIntegrationDefaults(r *webhook.IntegrationRecord, svc chat.Service) {
	for _, e := range chat.Events {
		switch e.Trigger {
		case gitlab.Deployment, gitlab.Incident, gitlab.Alert, gitlab.Vulnerability, gitlab.GroupMention, gitlab.GroupConfidentialMention:
			continue
		}
		if svc.Supports(e, r.Kind == webhook.KindGroup) {
			r.Triggers = append(r.Triggers, string(e.Trigger))
		}
	}
	r.NotifyOnlyBrokenPipelines = true
	r.BranchesToBeNotified = chat.BranchesDefault
	r.LabelsToBeNotifiedBehavior = chat.MatchAnyLabel
}

// validate checks a saved integration as GitLab does: an http(s) webhook
// that does not lead to a local address (GitLab's public_url), and valid
// settings.
func (q *integrationRequest) validate(r *webhook.IntegrationRecord) error {
	u, err := url.Parse(r.Webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &validationError{msg: "Webhook must be a valid URL"}
	}
	var blocked *delivery.BlockedError
	if errors.As(q.h.opt.Network.CheckSavedURL(q.r.Context(), r.Webhook, nil), &blocked) {
		return &validationError{msg: "Webhook is blocked: " + blocked.Reason, blocked: true}
	}
	if _, err := r.Hook(); err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the settings' own words, without the id
		}
		return &validationError{msg: err.Error()}
	}
	return nil
}

// changed puts the change into effect in this process, and re-enables the
// integration (id, 0 on delete): saving it is how a person says it works
// again after its chat refused it.
func (q *integrationRequest) changed(id int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.r.Context()), 2*time.Second)
	defer cancel()
	if id != 0 {
		if err := q.h.rt.ResetHealth(ctx, id); err != nil {
			q.h.log.Warn("integration saved but not re-enabled", zap.Int64("hook_id", id), zap.Error(err))
		}
	}
	if err := q.h.rt.RefreshHooks(ctx); err != nil {
		q.h.log.Warn("integrations changed but not reloaded yet; the background reload will pick the change up", zap.Error(err))
	}
}

// hookRequest lends the hooks API's parameter, error and rate limit
// handling.
func (q *integrationRequest) hookRequest() *request {
	return &request{h: q.h, w: q.w, r: q.r, ns: q.ns, scope: q.scope, caller: q.caller}
}

// errAnswered stops a store call whose callback has answered the request.
var errAnswered = errors.New("answered")

func (q *integrationRequest) storeError(what string, err error) {
	q.hookRequest().storeError(what, err)
}
