package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/grt-continuation/caddy-webhooks/internal/chatfixtures"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// The page's Chat integrations section lists the six chats and sets up
// Slack for a project: Test settings sends a message with the unsaved form,
// saving makes it active, the webhook is never shown again, and a push
// reaches the (fake) Slack.
func TestChatIntegrationsPageInBrowser(t *testing.T) {
	chromium(t)
	redis := redistest.Start(t)
	chatSrv, posts := fakeChat(t)
	const secretPath = "/services/T0001/B0001/ui-slack-SECRET"
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	push := chatfixtures.Payload("push")
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "mike/diaspora")
		w.Header().Set("Content-Type", "application/json")
		w.Write(push)
	}))
	t.Cleanup(upstream.Close)
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace uichattest
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
		handle_path /-/webhooks/* {
			webhooks_ui
		}
		handle /app/* {
			webhooks_capture
			reverse_proxy %s
		}
	}
	`, redis.URL, upstream.Listener.Addr()), "caddyfile")

	b := newBrowser(t)
	b.do("opening the page", chromedp.Navigate(uiBase), chromedp.WaitVisible(chromedp.CSS("#signin-token")))
	b.do("signing in",
		chromedp.SendKeys(chromedp.CSS("#signin-token"), apiAdminToken),
		chromedp.SendKeys(chromedp.CSS("#signin-path"), "mike/diaspora"),
		chromedp.SendKeys(chromedp.CSS("#signin-token"), kb.Enter))
	b.wait("the hooks list", `!document.querySelector('#view-hooks').hidden`)
	b.do("opening the integrations", chromedp.Click(chromedp.CSS("#hooks-integrations")))
	b.wait("the six chats, none set up", `!document.querySelector('#view-integrations').hidden &&
		document.querySelectorAll('#integration-list li').length === 6 &&
		document.querySelector('[data-service=slack]').textContent.includes('Not configured')`)
	if got := evalJS[string](b, `Array.from(document.querySelectorAll('#integration-list li'), (li) => li.dataset.service).join(' ')`); got != "slack mattermost discord microsoft-teams hangouts-chat webex-teams" {
		t.Errorf("the chats listed: %q", got)
	}

	b.do("opening Slack", chromedp.Click(chromedp.CSS("[data-service=slack] a")))
	b.wait("the Slack form", `!document.querySelector('#view-integration').hidden && document.querySelector('#int-webhook') !== null`)
	if on := evalJS[bool](b, `document.querySelector('#integration-form [name=push_events]').checked && !document.querySelector('#integration-form [name=deployment_events]').checked &&
		document.querySelector('#int-broken').checked && document.querySelector('#int-branches').value === 'default'`); !on {
		t.Error("a new integration does not start from GitLab's defaults")
	}
	b.do("filling the form, with a webhook Slack no longer knows",
		chromedp.SendKeys(chromedp.CSS("#int-webhook"), chatSrv.URL+"/gone/T0001/B0001/x"),
		chromedp.SendKeys(chromedp.CSS("#int-channel"), "#dev"),
		chromedp.SetValue(chromedp.CSS("#int-branches"), "all"),
		chromedp.SendKeys(chromedp.CSS("#int-pipeline-channel"), "#ci"))
	b.do("testing the settings", chromedp.Click(chromedp.CSS("#integration-test")))
	if p := nextPost(t, posts); !strings.HasPrefix(p.Path, "/gone/") {
		t.Fatalf("Test settings sent %+v", p)
	}
	b.wait("the refusal", `!document.querySelector('#integration-error').hidden &&
		document.querySelector('#integration-error').textContent === 'Connection failed. Check your integration settings. no_service'`)
	b.do("correcting the webhook and testing again",
		chromedp.SetValue(chromedp.CSS("#int-webhook"), chatSrv.URL+secretPath),
		chromedp.Click(chromedp.CSS("#integration-test")))
	if p := nextPost(t, posts); p.Path != secretPath || p.Slack.Channel != "#dev" || !strings.Contains(p.Slack.Text, "pushed to branch") {
		t.Fatalf("Test settings sent %+v", p)
	}
	b.wait("the test's result", `document.querySelector('#flash').textContent.includes('Connection successful') &&
		document.querySelector('#integration-error').hidden`)
	if status, body := uiAPI(t, http.MethodGet, "/projects/mike%2Fdiaspora/integrations/slack", nil); status != http.StatusNotFound {
		t.Fatalf("after Test settings, before saving: %d %s", status, body)
	}
	b.shot("integration-slack")
	b.do("saving", chromedp.Click(chromedp.CSS("#integration-save")))
	b.wait("Slack active", `!document.querySelector('#view-integrations').hidden &&
		document.querySelector('[data-service=slack]').textContent.includes('Active') &&
		document.querySelector('#flash').textContent.includes('saved')`)
	b.shot("integrations")

	status, body := uiAPI(t, http.MethodGet, "/projects/mike%2Fdiaspora/integrations/slack", nil)
	var got struct {
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(body, &got)
	if status != http.StatusOK || got.Properties["channel"] != "#dev" || got.Properties["pipeline_channel"] != "#ci" ||
		got.Properties["branches_to_be_notified"] != "all" || strings.Contains(string(body), "SECRET") {
		t.Fatalf("saved integration = %d %s", status, body)
	}

	if resp, body := post(t, "/app/push", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the app's push: %s", answered(resp, body))
	}
	p := nextPost(t, posts)
	if p.Path != secretPath || p.Slack.Channel != "#dev" || !strings.Contains(p.Slack.Text, "John Smith pushed to branch") {
		t.Fatalf("Slack got %+v", p)
	}

	// Editing: the webhook is not shown, and an empty field keeps it.
	b.do("editing Slack", chromedp.Click(chromedp.CSS("[data-service=slack] a")))
	b.wait("the Slack form, filled", `!document.querySelector('#view-integration').hidden && document.querySelector('#int-channel') &&
		document.querySelector('#int-channel').value === '#dev'`)
	doc := evalJS[string](b, `document.documentElement.outerHTML + Array.from(document.querySelectorAll('input'), (i) => i.value).join(' ')`)
	if strings.Contains(doc, "ui-slack-SECRET") {
		t.Error("the page shows the webhook")
	}
	b.do("changing the channel",
		chromedp.SetValue(chromedp.CSS("#int-channel"), "#ops"),
		chromedp.Click(chromedp.CSS("#integration-save")))
	b.wait("saved again", `!document.querySelector('#view-integrations').hidden && document.querySelector('#flash').textContent.includes('saved')`)
	if resp, body := post(t, "/app/push", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the app's push: %s", answered(resp, body))
	}
	if p := nextPost(t, posts); p.Path != secretPath || p.Slack.Channel != "#ops" {
		t.Fatalf("after the edit Slack got %s %q", p.Path, p.Slack.Channel)
	}

	b.do("deleting Slack", chromedp.Click(chromedp.CSS("[data-service=slack] a")))
	b.wait("the delete button", `document.querySelector('#integration-delete') !== null`)
	b.do("deleting", chromedp.Click(chromedp.CSS("#integration-delete")))
	b.wait("Slack gone", `!document.querySelector('#view-integrations').hidden &&
		document.querySelector('[data-service=slack]').textContent.includes('Not configured')`)
	if c := b.flash(); strings.Contains(c, "console") {
		t.Errorf("the page logged errors: %s", c)
	}
}
