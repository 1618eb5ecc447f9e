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

// test serves PUT …/integrations/:slug/test, GitLab's "Test settings"
// (Projects::Settings::IntegrationsController#test): the settings given
// (the form's, over the saved ones; nothing is saved) are checked as a save
// checks them, the SSRF guard included, then a push message (the latest
// push, or the documented sample) is sent to the webhook, to each channel,
// and the chat's answer reported. Every answer is 200, as GitLab's, the
// rate limit's too: 5 per minute per project or group and caller, as
// GitLab's project_testing_integration. Where ours differs (docs/api.md):
// GitLab's route is its UI's, outside the REST API; it tests only project
// integrations; its test runs the integration's branch filter; its Slack
// notifier takes any HTTP answer as success.
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
	// GitLab's check_test_rate_limit! answers 200 with the error, as every
	// answer of the test.
	if !hr.admitted("integration_test", q.h.opt.TestRateLimit) {
		writeJSON(q.w, http.StatusOK, integrationTestAnswer{Error: true,
			Message: "This endpoint has been requested too many times. Try again later."})
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
	// GitLab's test sends the project's latest push, or a sample push,
	// through the integration's branch filter (a push on a branch not
	// selected fails the test with "false"); here it goes whatever the
	// filters say: the settings are what is tried.
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
	// Each channel of the list gets the message, as GitLab's notifier
	// posts it to each; the first refusal is the answer.
	for _, post := range posts {
		res := q.h.rt.TestSettings(q.r.Context(), hook, gitlab.Push, post.Body)
		if res.Success() {
			continue
		}
		response := string(res.Body)
		if res.Err != nil && res.Status == 0 {
			response = res.Err.Error()
		}
		if post.Channel != "" && len(posts) > 1 {
			response = post.Channel + ": " + response
		}
		failed("Connection failed. Check your integration settings.", hooklog.MaskSecrets(hook, response), true)
		return
	}
	writeJSON(q.w, http.StatusOK, integrationTestAnswer{})
}
