package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/slack-go/slack"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/grt-continuation/caddy-webhooks/internal/chatfixtures"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// chatPost is one message a fake chat endpoint received.
type chatPost struct {
	Path        string
	ContentType string
	Slack       slack.WebhookMessage // Slack and Mattermost (form field "payload")
	JSON        map[string]any       // Discord and Teams
}

// fakeChat is a real loopback HTTP server standing in for Slack,
// Mattermost, Discord and Teams; under /gone it answers as Slack does for
// a removed webhook (404 no_service), and to a Slack message for the
// channel #nowhere as Slack does for a channel it does not know (404
// channel_not_found).
func fakeChat(t *testing.T) (*httptest.Server, chan chatPost) {
	ch := make(chan chatPost, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p := chatPost{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
		if p.ContentType == "application/x-www-form-urlencoded" {
			form, err := url.ParseQuery(string(b))
			if err == nil {
				err = json.Unmarshal([]byte(form.Get("payload")), &p.Slack)
			}
			if err != nil {
				t.Errorf("not a Slack message: %v: %s", err, b)
			}
		} else if err := json.Unmarshal(b, &p.JSON); err != nil {
			t.Errorf("not JSON: %v: %s", err, b)
		}
		ch <- p
		if strings.HasPrefix(r.URL.Path, "/gone") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "no_service")
			return
		}
		if p.Slack.Channel == "#nowhere" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "channel_not_found")
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func nextPost(t *testing.T, ch chan chatPost) chatPost {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no chat message within 10s")
		return chatPost{}
	}
}

// startChatFixture is a Caddy with the API and an app whose responses are
// the shared sample payloads (internal/chatfixtures), for project mike/diaspora.
func startChatFixture(t *testing.T) (*caddytest.Tester, *gitlab.Client, *redistest.Server) {
	t.Helper()
	redis := redistest.Start(t)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.URL.Query().Get("kind")
		body := chatfixtures.Payload(kind)
		if body == nil {
			http.Error(w, "no such sample", http.StatusNotFound)
			return
		}
		w.Header().Set("X-Webhook-Event", string(chatfixtures.Trigger(kind)))
		w.Header().Set("X-Webhook-Project", chatfixtures.Project)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(upstream.Close)
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace chattest
			allow_local_requests
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
		}
	}
	localhost:9080 {
		handle_path /api/v4/* {
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
			}
		}
		handle /app/* {
			webhooks_capture
			reverse_proxy %s
		}
	}
	`, redis.URL, upstream.Listener.Addr()), "caddyfile")
	c, err := gitlab.NewClient(apiAdminToken, gitlab.WithBaseURL(apiBase), gitlab.WithCustomRetryMax(0))
	if err != nil {
		t.Fatal(err)
	}
	return tester, c, redis
}

func sendEvent(t *testing.T, tester *caddytest.Tester, kind string) {
	t.Helper()
	resp, err := tester.Client.Get("http://localhost:9080/app/event?kind=" + kind)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("app answered %d for %s", resp.StatusCode, kind)
	}
}

func TestSlackNotificationsThroughGitLabsClient(t *testing.T) {
	tester, c, redis := startChatFixture(t)
	chatSrv, posts := fakeChat(t)
	webhook := chatSrv.URL + "/services/T0001/B0001/slack-SECRET-token"

	for _, tc := range []struct {
		body, want string
		status     int
	}{
		{`{"channel":"#dev"}`, `{"error":"webhook is missing"}`, http.StatusBadRequest},
		{`{"webhook":"` + webhook + `","branches_to_be_notified":"some"}`, `{"message":"branches_to_be_notified does not have a valid value"}`, http.StatusBadRequest},
		{`{"webhook":"` + webhook + `","push_events":"maybe"}`, `{"error":"push_events is invalid"}`, http.StatusBadRequest},
		{`{"webhook":"not a url"}`, `{"message":"Webhook must be a valid URL"}`, http.StatusBadRequest},
	} {
		status, body, _ := rawRequest(t, tester, http.MethodPut, "/api/v4/projects/mike%2Fdiaspora/integrations/slack", []byte(tc.body))
		if status != tc.status || body != tc.want {
			t.Errorf("PUT %s = %d %s, want %d %s", tc.body, status, body, tc.status, tc.want)
		}
	}
	f := &apiFixture{tester: tester}
	if status, _, _ := f.raw(t, http.MethodGet, "/api/v4/projects/mike%2Fdiaspora/integrations/slack", "", "", nil); status != http.StatusUnauthorized {
		t.Errorf("GET without a token = %d", status)
	}

	_, resp, err := c.Services.SetSlackService("mike/diaspora", &gitlab.SetSlackServiceOptions{
		WebHook: gitlab.Ptr(webhook), Username: gitlab.Ptr("GitLab"), Channel: gitlab.Ptr("#dev"),
		PipelineChannel: gitlab.Ptr("#ci"), NotifyOnlyBrokenPipelines: gitlab.Ptr(false),
		BranchesToBeNotified: gitlab.Ptr("all"), DeploymentEvents: gitlab.Ptr(true),
	})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("SetSlackService: %v", err)
	}
	got, _, err := c.Services.GetSlackService("mike/diaspora")
	if err != nil {
		t.Fatalf("GetSlackService: %v", err)
	}
	if !got.Active || !got.PushEvents || !got.DeploymentEvents || got.Properties.WebHook != "" ||
		got.Properties.Channel != "#dev" || got.Properties.PipelineChannel != "#ci" ||
		got.Properties.BranchesToBeNotified != "all" || bool(got.Properties.NotifyOnlyBrokenPipelines) {
		t.Fatalf("GetSlackService = %+v %+v", got, got.Properties)
	}

	for _, tc := range []struct {
		kind, channel string
		text          []string // in the text, or the first attachment's fallback
		attachment    string   // in the first attachment's text or title
	}{
		{"push", "#dev", []string{"John Smith pushed to branch <https://gitlab.example.com/mike/diaspora/-/commits/master|master> of <https://gitlab.example.com/mike/diaspora|mike/diaspora>", "|Compare changes>"}, "|b6568db1>: Update Catalan translation to e38cb41. - Jordi Mallach"},
		{"tag_push", "#dev", []string{"John Smith pushed new tag <https://gitlab.example.com/mike/diaspora/-/tags/v1.0.0|v1.0.0> to"}, ""},
		{"issue_open", "#dev", []string{"Issue <https://gitlab.example.com/mike/diaspora/-/issues/23|#23 New API: create/update/delete file img> opened by Administrator (root)"}, "&lt;script&gt;"},
		{"merge_request_open", "#dev", []string{"Administrator (root) opened merge request <https://gitlab.example.com/mike/diaspora/-/merge_requests/1|!1 *MS-Viewport*>"}, ""},
		{"note_issue", "#dev", []string{"Administrator (root) <https://gitlab.example.com/mike/diaspora/-/issues/17#note_1241|commented on issue #17>"}, "<https://docs.example.com/a?b=1&c=2|docs>"},
		{"pipeline_failed", "#ci", []string{"Pipeline <https://gitlab.example.com/mike/diaspora/-/pipelines/31/failures|#31> of branch <https://gitlab.example.com/mike/diaspora/-/commits/master|master> by Administrator (root) has failed in 03:01"}, "Pipeline #31 has failed in 03:01"},
		{"wiki_page", "#dev", []string{"Administrator (root) created <https://gitlab.example.com/mike/diaspora/-/wikis/awesome|wiki page>"}, "adding an awesome page to the wiki"},
		{"deployment", "#dev", []string{"Deploy to staging succeeded"}, "with job <https://gitlab.example.com/mike/diaspora/-/jobs/796|#796>"},
	} {
		sendEvent(t, tester, tc.kind)
		p := nextPost(t, posts)
		msg := p.Slack
		text := msg.Text
		if len(msg.Attachments) > 0 {
			text += "\n" + msg.Attachments[0].Fallback
		}
		if p.Path != "/services/T0001/B0001/slack-SECRET-token" || p.ContentType != "application/x-www-form-urlencoded" ||
			msg.Channel != tc.channel || msg.Username != "GitLab" {
			t.Errorf("%s: posted to %s as %s, channel %q, username %q", tc.kind, p.Path, p.ContentType, msg.Channel, msg.Username)
		}
		for _, want := range tc.text {
			if !strings.Contains(text, want) {
				t.Errorf("%s: text %q lacks %q", tc.kind, text, want)
			}
		}
		if tc.attachment != "" {
			if len(msg.Attachments) == 0 {
				t.Errorf("%s: no attachment", tc.kind)
			} else if a := msg.Attachments[0]; !strings.Contains(a.Text+a.Title, tc.attachment) {
				t.Errorf("%s: attachment %+v lacks %q", tc.kind, a, tc.attachment)
			}
		}
	}
	assertNoPlaintextInRedis(t, redis, "slack-SECRET-token")

	// Both path spellings; the webhook never comes back.
	for _, path := range []string{"/api/v4/projects/mike%2Fdiaspora/integrations/slack", "/api/v4/projects/mike%2Fdiaspora/services/slack"} {
		status, body, _ := rawRequest(t, tester, http.MethodGet, path, nil)
		if status != http.StatusOK || strings.Contains(body, "SECRET") || !strings.Contains(body, `"slug":"slack"`) {
			t.Errorf("GET %s = %d %s", path, status, body)
		}
	}

	// Deleting stops the notifications.
	if _, err := c.Services.DeleteSlackService("mike/diaspora"); err != nil {
		t.Fatalf("DeleteSlackService: %v", err)
	}
	if _, resp, err := c.Services.GetSlackService("mike/diaspora"); err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GetSlackService after delete: %v", err)
	}
	sendEvent(t, tester, "push")
	select {
	case p := <-posts:
		t.Fatalf("a deleted integration still posted: %+v", p)
	case <-time.After(1500 * time.Millisecond):
	}
}

func rawRequest(t *testing.T, tester *caddytest.Tester, method, path string, body []byte) (int, string, http.Header) {
	t.Helper()
	f := &apiFixture{tester: tester}
	return f.raw(t, method, path, apiAdminToken, "application/json", body)
}

func TestChatIntegrationsInheritAndOtherChats(t *testing.T) {
	tester, c, _ := startChatFixture(t)
	chatSrv, posts := fakeChat(t)

	// A group's Mattermost applies to its projects.
	_, _, err := c.Integrations.SetGroupMattermostIntegration("mike", &gitlab.GroupMattermostIntegrationOptions{
		WebHook: gitlab.Ptr(chatSrv.URL + "/mattermost/hooks/xyz"), Channel: gitlab.Ptr("town-square"),
		BranchesToBeNotified: gitlab.Ptr("default"),
	})
	if err != nil {
		t.Fatalf("SetGroupMattermostIntegration: %v", err)
	}
	status, body, _ := rawRequest(t, tester, http.MethodGet, "/api/v4/projects/mike%2Fdiaspora/integrations/mattermost", nil)
	if status != http.StatusOK || !strings.Contains(body, `"inherited":true`) {
		t.Fatalf("inherited GET = %d %s", status, body)
	}
	// A project's own settings replace the group's until it inherits again.
	status, body, _ = rawRequest(t, tester, http.MethodPut, "/api/v4/projects/mike%2Fdiaspora/integrations/mattermost",
		[]byte(`{"webhook":"`+chatSrv.URL+`/mattermost/hooks/own","channel":"own"}`))
	if status != http.StatusOK || !strings.Contains(body, `"inherited":false`) || !strings.Contains(body, `"channel":"own"`) {
		t.Fatalf("own PUT = %d %s", status, body)
	}
	status, body, _ = rawRequest(t, tester, http.MethodPut, "/api/v4/projects/mike%2Fdiaspora/integrations/mattermost",
		[]byte(`{"use_inherited_settings":true}`))
	if status != http.StatusOK || !strings.Contains(body, `"inherited":true`) || !strings.Contains(body, `"channel":"town-square"`) {
		t.Fatalf("use_inherited_settings = %d %s", status, body)
	}
	sendEvent(t, tester, "push") // master, the default branch
	p := nextPost(t, posts)
	if p.Path != "/mattermost/hooks/xyz" || p.Slack.Channel != "town-square" || !strings.Contains(p.Slack.Text, "pushed to branch <") {
		t.Fatalf("Mattermost post %+v", p)
	}

	// Discord and Teams take Markdown in their own shapes.
	if _, _, err := c.Services.SetDiscordService("mike/diaspora", &gitlab.SetDiscordServiceOptions{
		WebHook: gitlab.Ptr(chatSrv.URL + "/discord/api/webhooks/1/tok"), PushEvents: gitlab.Ptr(true),
	}); err != nil {
		t.Fatalf("SetDiscordService: %v", err)
	}
	if _, _, err := c.Services.SetMicrosoftTeamsService("mike/diaspora", &gitlab.SetMicrosoftTeamsServiceOptions{
		WebHook: gitlab.Ptr(chatSrv.URL + "/teams/webhookb2/abc"), PushEvents: gitlab.Ptr(true),
	}); err != nil {
		t.Fatalf("SetMicrosoftTeamsService: %v", err)
	}
	sendEvent(t, tester, "push")
	byPath := map[string]chatPost{}
	for range 3 {
		p := nextPost(t, posts)
		byPath[strings.SplitN(p.Path, "/", 3)[1]] = p
	}
	d := byPath["discord"].JSON
	embeds, _ := d["embeds"].([]any)
	if len(embeds) != 1 || !strings.Contains(fmt.Sprint(embeds[0]), "pushed to branch [master](https://gitlab.example.com/mike/diaspora/-/commits/master)") {
		t.Errorf("Discord message %v", d)
	}
	tm := byPath["teams"].JSON
	if tm["title"] != "mike/diaspora" || !strings.Contains(fmt.Sprint(tm["sections"]), "activityTitle:John Smith pushed to branch [master]") {
		t.Errorf("Teams message %v", tm)
	}
	if _, ok := byPath["mattermost"]; !ok {
		t.Errorf("the group's Mattermost was not notified: %v", byPath)
	}

	// A chat that refuses (Slack's 404 no_service) is reported and not retried.
	if _, _, err := c.Services.SetSlackService("mike/diaspora", &gitlab.SetSlackServiceOptions{
		WebHook: gitlab.Ptr(chatSrv.URL + "/gone/services/T/B/x"), BranchesToBeNotified: gitlab.Ptr("all"),
	}); err != nil {
		t.Fatalf("SetSlackService: %v", err)
	}
	if _, err := c.Services.DeleteDiscordService("mike/diaspora"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Services.DeleteMicrosoftTeamsService("mike/diaspora"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Integrations.DeleteGroupMattermostIntegration("mike"); err != nil {
		t.Fatal(err)
	}
	sendEvent(t, tester, "push")
	if p := nextPost(t, posts); !strings.HasPrefix(p.Path, "/gone/") {
		t.Fatalf("post to %s", p.Path)
	}
	select {
	case p := <-posts:
		t.Fatalf("a refused message was retried: %s", p.Path)
	case <-time.After(1500 * time.Millisecond):
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://localhost:2999/webhooks/dead-letters")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "client error 404") {
			if strings.Contains(string(b), "/gone/services") {
				t.Fatalf("the dead letter shows the webhook's secret path: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter for the refused message: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
