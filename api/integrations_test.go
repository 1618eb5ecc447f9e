package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestMatchIntegrationRoutes(t *testing.T) {
	cases := []struct {
		path string
		ok   bool
		want integrationRoute
	}{
		{"/projects/acme%2Fapi/integrations/slack", true, integrationRoute{webhook.KindProject, "acme%2Fapi", chat.Slack, false}},
		{"/projects/5/services/slack", true, integrationRoute{webhook.KindProject, "5", chat.Slack, false}},
		{"/groups/acme/integrations/mattermost", true, integrationRoute{webhook.KindGroup, "acme", chat.Mattermost, false}},
		{"/projects/5/services/microsoft-teams", true, integrationRoute{webhook.KindProject, "5", chat.MicrosoftTeams, false}},
		{"/projects/5/integrations/microsoft_teams", true, integrationRoute{webhook.KindProject, "5", chat.MicrosoftTeams, false}},
		{"/projects/5/integrations", true, integrationRoute{webhook.KindProject, "5", "", false}},
		{"/projects/5/integrations/jira", false, integrationRoute{}},
		{"/projects/5/integrations/slack/x", false, integrationRoute{}},
		{"/projects/5/integrations/hangouts-chat/test", true, integrationRoute{webhook.KindProject, "5", chat.GoogleChat, true}},
		{"/groups/acme/integrations/webex-teams", true, integrationRoute{webhook.KindGroup, "acme", chat.WebexTeams, false}},
		{"/projects/5/integrations/test", false, integrationRoute{}},
		{"/projects/a/integrations/slack/projects/b/integrations/slack", false, integrationRoute{}},
		{"/projects//integrations/slack", false, integrationRoute{}},
		{"/users/5/integrations/slack", false, integrationRoute{}},
		{"projects/5/integrations/slack", false, integrationRoute{}},
	}
	for _, c := range cases {
		got, ok := matchIntegration(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("matchIntegration(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

// The address guard decides on the webhook at save time, as GitLab's
// public_url validator; nothing is dialled.
func TestIntegrationWebhookValidation(t *testing.T) {
	q := &integrationRequest{h: &Handler{opt: Options{Network: publicOnly}}, r: httptest.NewRequest(http.MethodPut, "/", nil)}
	valid := func(hookURL string) *webhook.IntegrationRecord {
		return &webhook.IntegrationRecord{Kind: webhook.KindProject, Path: "acme/api", Service: "slack", Webhook: hookURL, BranchesToBeNotified: chat.BranchesDefault}
	}
	for hookURL, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/x":     "",
		"http://127.0.0.1:8080/hook":                 "Webhook is blocked",
		"http://[::ffff:169.254.169.254]/latest":     "Webhook is blocked",
		"http://localhost/hook":                      "Webhook is blocked",
		"ftp://hooks.example.com/x":                  "Webhook must be a valid URL",
		"hooks.slack.com/services/T/B/x":             "Webhook must be a valid URL",
		"https://hooks.slack.com/services/T/B/x?a=1": "",
		// Read as the dialer reads the host, names resolved at save.
		"http://2130706433/hook":         "Webhook is blocked: Requests to localhost are not allowed",
		"http://chat.internal.test/hook": "Webhook is blocked: Requests to the local network are not allowed",
		"http://chat.nx.test/hook":       "Webhook is blocked: Host cannot be resolved or invalid",
	} {
		err := q.validate(valid(hookURL))
		var ve *validationError
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", hookURL, err)
		case want != "" && (!errors.As(err, &ve) || !strings.HasPrefix(ve.msg, want)):
			t.Errorf("%s: %v, want %q", hookURL, err, want)
		}
	}
	bad := valid("https://hooks.slack.com/services/T/B/x")
	bad.BranchesToBeNotified = "some"
	var ve *validationError
	if err := q.validate(bad); !errors.As(err, &ve) || ve.msg != "branches_to_be_notified does not have a valid value" {
		t.Errorf("bad branches: %v", err)
	}
}
