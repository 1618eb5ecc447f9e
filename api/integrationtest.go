package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// integrationTestAnswer is the answer of GitLab's "Test settings"
// (IntegrationsActions#test): {} when the chat took the message, else
// what went wrong, always with 200.
type integrationTestAnswer struct {
	Error           bool   `json:"error,omitempty"`
	Message         string `json:"message,omitempty"`
	ServiceResponse string `json:"service_response,omitempty"`
	TestFailed      *bool  `json:"test_failed,omitempty"`
}

// test serves PUT …/integrations/:slug/test, GitLab's "Test settings": the
// settings given (the form's, over the saved ones; nothing is saved) are
// checked as a save checks them, the SSRF guard included, then a sample
// push message is sent to the webhook and the chat's answer reported.
// Rate limited as the hook test: 5 per minute per project or group and
// caller.
func (q *integrationRequest) test() {
	hr := q.hookRequest()
	p, ok := hr.params()
	if !ok {
		return
	}
	in := readIntegrationInput(p, q.service, q.ns.Kind == webhook.KindGroup)
	if p.failed(q.w) {
		return
	}
	if !hr.throttle("integration_test", q.h.opt.TestRateLimit) {
		return
	}
	rec, err := q.h.opt.Integrations.GetIntegration(q.r.Context(), q.ns, string(q.service))
	switch {
	case errors.Is(err, redisstore.ErrIntegrationNotFound):
		rec = &webhook.IntegrationRecord{Kind: q.ns.Kind, Path: q.ns.Path, Service: string(q.service)}
		setIntegrationDefaults(rec, q.service)
	case err != nil:
		q.storeError("reading an integration", err)
		return
	}
	in.apply(rec)
	failed := func(msg, response string, sent bool) {
		writeJSON(q.w, http.StatusOK, integrationTestAnswer{Error: true, Message: msg, ServiceResponse: response, TestFailed: &sent})
	}
	if rec.Webhook == "" {
		failed("Validations failed.", "Webhook can't be blank", false)
		return
	}
	if err := q.validate(rec); err != nil {
		var ve *validationError
		if errors.As(err, &ve) {
			failed("Validations failed.", ve.msg, false)
			return
		}
		q.h.internalError(q.w, "checking integration settings", err)
		return
	}
	hook, err := rec.Hook()
	if err != nil {
		failed("Validations failed.", errors.Unwrap(err).Error(), false)
		return
	}
	// GitLab's test sends the project's latest push, or a sample push;
	// whatever the filters say, the message goes.
	s := *hook.Chat
	s.BranchesToBeNotified, s.LabelsToBeNotified = chat.BranchesAll, ""
	s.Triggers.Add(gitlab.Push)
	body := hr.latest(gitlab.Push)
	if body == nil {
		body = samplePayload(gitlab.Push, q.ns)
	}
	posts, err := chat.Render(&s, gitlab.Push, body, time.Now())
	if err != nil || len(posts) == 0 {
		failed("Connection failed. Check your integration settings.", "no message could be written from the sample push", true)
		return
	}
	hook.Chat = &s
	// One channel is enough to tell whether the settings work.
	res := q.h.rt.TestSettings(q.r.Context(), hook, gitlab.Push, posts[0].Body)
	switch {
	case res.Success():
		writeJSON(q.w, http.StatusOK, integrationTestAnswer{})
	case res.Err != nil && res.Status == 0:
		failed("Connection failed. Check your integration settings.", hooklog.MaskSecrets(hook, res.Err.Error()), true)
	default:
		failed("Connection failed. Check your integration settings.", hooklog.MaskSecrets(hook, string(res.Body)), true)
	}
}
