package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gitlab.com/gitlab-org/api/client-go"
)

// Every chat integration we offer answers in the shape of GitLab's own
// types, as client-go decodes them: the event flags (the new alert,
// incident, vulnerability and group mention ones too), each service's
// properties, GitLab's slugs (hangouts-chat, webex-teams), and never the
// webhook.
func TestChatIntegrationsDecodeIntoGitLabsTypes(t *testing.T) {
	tester, c, _ := startChatFixture(t)
	chatSrv, _ := fakeChat(t)
	put := func(slug, body string) {
		t.Helper()
		status, resp, _ := rawRequest(t, tester, http.MethodPut, "/api/v4/groups/mike/integrations/"+slug, []byte(body))
		if status != http.StatusOK {
			t.Fatalf("PUT %s = %d %s", slug, status, resp)
		}
	}
	hook := `"webhook":"` + chatSrv.URL + `/SECRET"`

	put("slack", `{`+hook+`,"channel":"#dev, #ops","alert_events":true,"alert_channel":"#alerts","incident_events":true,
		"vulnerability_events":true,"group_mention_events":true,"group_mention_channel":"#mentions",
		"group_confidential_mention_events":true,"labels_to_be_notified":"~api","notify_only_broken_pipelines":false}`)
	slack, _, err := c.Integrations.GetGroupSlackSettings("mike")
	if err != nil {
		t.Fatalf("GetGroupSlackSettings: %v", err)
	}
	if slack.Slug != "slack" || !slack.Active || !slack.AlertEvents || !slack.IncidentEvents || !slack.VulnerabilityEvents ||
		!slack.GroupMentionEvents || !slack.GroupConfidentialMentionEvents || slack.DeploymentEvents || !slack.PushEvents ||
		slack.Properties.Channel != "#dev, #ops" || slack.Properties.AlertChannel != "#alerts" ||
		slack.Properties.GroupMentionChannel != "#mentions" || slack.Properties.LabelsToBeNotified != "~api" ||
		slack.Properties.NotifyOnlyBrokenPipelines || slack.Properties.BranchesToBeNotified != "default" {
		t.Errorf("Slack = %+v %+v", slack.Integration, slack.Properties)
	}

	put("mattermost", `{`+hook+`,"username":"GitLab","incident_events":true,"incident_channel":"#inc"}`)
	mm, _, err := c.Integrations.GetGroupMattermostSettings("mike")
	if err != nil {
		t.Fatalf("GetGroupMattermostSettings: %v", err)
	}
	if mm.Slug != "mattermost" || !mm.IncidentEvents || mm.Properties.IncidentChannel != "#inc" || mm.Properties.Username != "GitLab" ||
		!mm.Properties.NotifyOnlyBrokenPipelines || mm.Properties.LabelsToBeNotifiedBehavior != "match_any" {
		t.Errorf("Mattermost = %+v %+v", mm.Integration, mm.Properties)
	}

	// The others take no channel, and no events GitLab does not offer them.
	put("discord", `{`+hook+`,"deployment_events":true,"alert_events":true,"branches_to_be_notified":"all"}`)
	discord, _, err := c.Integrations.GetGroupDiscordSettings("mike")
	if err != nil {
		t.Fatalf("GetGroupDiscordSettings: %v", err)
	}
	if discord.Slug != "discord" || !discord.DeploymentEvents || discord.AlertEvents || discord.Properties.BranchesToBeNotified != "all" {
		t.Errorf("Discord = %+v %+v", discord.Integration, discord.Properties)
	}

	put("hangouts-chat", `{`+hook+`,"deployment_events":true,"notify_only_broken_pipelines":false,"branches_to_be_notified":"protected"}`)
	gchat, _, err := c.Integrations.GetGroupGoogleChatSettings("mike")
	if err != nil {
		t.Fatalf("GetGroupGoogleChatSettings: %v", err)
	}
	if gchat.Slug != "hangouts-chat" || gchat.Title != "Google Chat" || gchat.DeploymentEvents || !gchat.WikiPageEvents ||
		gchat.Properties.NotifyOnlyBrokenPipelines || gchat.Properties.BranchesToBeNotified != "protected" {
		t.Errorf("Google Chat = %+v %+v", gchat.Integration, gchat.Properties)
	}

	put("webex-teams", `{`+hook+`,"push_events":false}`)
	webex, _, err := c.Integrations.GetGroupWebexTeamsSettings("mike")
	if err != nil {
		t.Fatalf("GetGroupWebexTeamsSettings: %v", err)
	}
	if webex.Slug != "webex-teams" || webex.Title != "Webex Teams" || webex.PushEvents || !webex.IssuesEvents ||
		!webex.Properties.NotifyOnlyBrokenPipelines || webex.Properties.BranchesToBeNotified != "default" {
		t.Errorf("Webex Teams = %+v %+v", webex.Integration, webex.Properties)
	}

	put("microsoft-teams", `{`+hook+`}`)
	teams, _, err := c.Integrations.GetGroupMicrosoftTeamsNotifications("mike")
	if err != nil {
		t.Fatalf("GetGroupMicrosoftTeamsNotifications: %v", err)
	}
	if teams.Slug != "microsoft-teams" || !teams.PipelineEvents || teams.DeploymentEvents {
		t.Errorf("Microsoft Teams = %+v", teams)
	}

	// The list holds all six, none with its webhook.
	status, body, _ := rawRequest(t, tester, http.MethodGet, "/api/v4/groups/mike/integrations", nil)
	var list []*gitlab.Integration
	if status != http.StatusOK || decodeJSON(body, &list) != nil || len(list) != 6 || containsAny(body, "SECRET", "webhook") {
		t.Errorf("list = %d %s", status, body)
	}
}

func decodeJSON(body string, v any) error { return json.Unmarshal([]byte(body), v) }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// GitLab's "Test settings": the form's settings, not saved, get a sample
// message, to each channel of a list; the chat's refusal comes back in
// GitLab's answer, and the test is rate limited as the hook test is, with
// GitLab's answer (200, the error in the body).
func TestChatIntegrationTestSettings(t *testing.T) {
	tester, _, _ := startChatFixture(t)
	chatSrv, posts := fakeChat(t)
	const path = "/api/v4/projects/mike%2Fdiaspora/integrations/"
	const refused = `{"error":true,"message":"Connection failed. Check your integration settings.","service_response":`
	for _, tc := range []struct {
		slug, body, want string
	}{
		{"hangouts-chat", `{"webhook":"` + chatSrv.URL + `/v1/spaces/AAA/messages?key=k"}`, `{}`},
		{"slack", `{"webhook":"` + chatSrv.URL + `/gone/T/B/x","channel":"#dev"}`,
			refused + `"no_service","test_failed":true}`},
		{"mattermost", `{"webhook":"` + chatSrv.URL + `/hooks/x","channel":"#dev, #nowhere"}`,
			refused + `"#nowhere: channel_not_found","test_failed":true}`},
		{"discord", `{"channel":"#dev"}`,
			`{"error":true,"message":"Validations failed.","service_response":"Webhook can't be blank","test_failed":false}`},
		{"webex-teams", `{"webhook":"ftp://example.com/x"}`,
			`{"error":true,"message":"Validations failed.","service_response":"Webhook must be a valid URL","test_failed":false}`},
	} {
		status, body, _ := rawRequest(t, tester, http.MethodPut, path+tc.slug+"/test", []byte(tc.body))
		if status != http.StatusOK || body != tc.want {
			t.Errorf("test %s = %d %s, want 200 %s", tc.slug, status, body, tc.want)
		}
	}
	gchat := nextPost(t, posts)
	if gchat.Path != "/v1/spaces/AAA/messages" || !strings.Contains(fmt.Sprint(gchat.JSON["text"]), "pushed to branch") {
		t.Errorf("Google Chat got %+v", gchat)
	}
	if slack := nextPost(t, posts); slack.Path != "/gone/T/B/x" || slack.Slack.Channel != "#dev" {
		t.Errorf("Slack got %+v, want one message to #dev", slack)
	}
	for _, want := range []string{"#dev", "#nowhere"} {
		if mm := nextPost(t, posts); mm.Path != "/hooks/x" || mm.Slack.Channel != want {
			t.Errorf("Mattermost got %+v, want a message to %s", mm, want)
		}
	}
	// Nothing was saved.
	for _, slug := range []string{"hangouts-chat", "slack", "mattermost"} {
		if status, body, _ := rawRequest(t, tester, http.MethodGet, path+slug, nil); status != http.StatusNotFound {
			t.Errorf("GET %s after a test = %d %s", slug, status, body)
		}
	}
	// Five a minute, as the hook test: the five above went, the sixth gets
	// GitLab's answer, 200 with the error.
	status, body, hdr := rawRequest(t, tester, http.MethodPut, path+"discord/test", []byte(`{}`))
	const tooMany = `{"error":true,"message":"This endpoint has been requested too many times. Try again later."}`
	if status != http.StatusOK || body != tooMany || hdr.Get("Retry-After") == "" {
		t.Errorf("sixth test = %d %s (Retry-After %q), want 200 %s", status, body, hdr.Get("Retry-After"), tooMany)
	}
}
