package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// startControlUI is a Caddy with the page, the API and a captured app,
// for the page's delivery-control actions; it returns a function that
// makes the app send one push event.
func startControlUI(t *testing.T) (appEvent func()) {
	t.Helper()
	redis := redistest.Start(t)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object_kind":"push","ref":"refs/heads/main","project":{"path_with_namespace":"acme/api"},"commits":[]}`)
	}))
	t.Cleanup(upstream.Close)
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace uicontrol
			allow_local_requests
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
			max_attempts 5
			retry_backoff 1m
			timeout 2s
			lease 4s
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
	return func() {
		t.Helper()
		resp, _ := post(t, "/app/push", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("app answered %d", resp.StatusCode)
		}
	}
}

// signIn opens the page and signs in to acme/api as the admin.
func signIn(b *browser) {
	b.do("opening the page", chromedp.Navigate(uiBase), chromedp.WaitVisible(chromedp.CSS("#signin-token")))
	b.do("signing in",
		chromedp.SendKeys(chromedp.CSS("#signin-path"), "acme/api"),
		chromedp.SendKeys(chromedp.CSS("#signin-token"), apiAdminToken),
		chromedp.SendKeys(chromedp.CSS("#signin-token"), kb.Enter))
	b.wait("the hooks list", `!document.querySelector('#view-hooks').hidden`)
}

// "Deliver in order" on the form makes an ordered hook; while its first
// delivery fails, the list shows the hook ordered and blocked, by which
// event.
func TestOrderedHookOnThePage(t *testing.T) {
	chromium(t)
	appEvent := startControlUI(t)
	failing := newUIReceiver(t, http.StatusServiceUnavailable)
	b := newBrowser(t)
	signIn(b)
	b.do("opening the add form", chromedp.Click(chromedp.CSS("#hooks-add")), chromedp.WaitVisible(chromedp.CSS("#hook-url")))
	b.do("filling it in",
		chromedp.SendKeys(chromedp.CSS("#hook-url"), failing.URL+"/deploy"),
		chromedp.Click(chromedp.CSS("#hook-ordered")),
		chromedp.Click(chromedp.CSS("#form-submit")))
	b.wait("the new hook", `document.querySelector('#flash').textContent.includes('Webhook was created')`)
	code, body := uiAPI(t, http.MethodGet, "/projects/acme%2Fapi/hooks", nil)
	var hooks []struct {
		ID      int64 `json:"id"`
		Ordered bool  `json:"ordered"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &hooks) != nil || len(hooks) != 1 || !hooks[0].Ordered {
		t.Fatalf("hooks after the form: %d %s", code, body)
	}
	id := hooks[0].ID
	appEvent()
	appEvent()
	failing.next(t)
	var blockedBy string
	waitAPI(t, "the hook blocked", func() bool {
		_, body := uiAPI(t, http.MethodGet, fmt.Sprintf("/projects/acme%%2Fapi/hooks/%d", id), nil)
		var h struct {
			Queue struct {
				Pending   int `json:"pending"`
				BlockedBy *struct {
					EventID string `json:"event_id"`
				} `json:"blocked_by"`
			} `json:"ordered_queue"`
		}
		json.Unmarshal(body, &h)
		if h.Queue.BlockedBy == nil || h.Queue.Pending != 2 {
			return false
		}
		blockedBy = h.Queue.BlockedBy.EventID
		return true
	})
	b.do("reloading the list", chromedp.Reload())
	b.wait("the blocked note", fmt.Sprintf(`(document.querySelector('#hook-%d .blocked')||{textContent:''}).textContent.includes(%q)`, id, blockedBy))
	note := b.text(fmt.Sprintf("#hook-%d .blocked", id))
	for _, want := range []string{"Deliveries blocked", "503", "2 deliveries wait"} {
		if !strings.Contains(note, want) {
			t.Errorf("blocked note %q lacks %q", note, want)
		}
	}
	if got := b.text(fmt.Sprintf("#hook-%d .hook-head", id)); !strings.Contains(got, "Ordered") {
		t.Errorf("hook head %q lacks the Ordered badge", got)
	}
	b.do("opening the hook", chromedp.Click(chromedp.CSS(fmt.Sprintf("#hook-%d a.btn", id))))
	b.wait("the form", `!document.querySelector('#view-form').hidden`)
	if !evalJS[bool](b, `document.querySelector('#hook-ordered').checked && document.querySelector('#form-banners').textContent.includes('Deliveries blocked')`) {
		t.Errorf("the edit form does not show the hook ordered and blocked")
	}
}

// "Resend failed since…" on a hook's page counts the failed deliveries
// since the time given, then sends them again through the API's replay.
func TestResendFailedSinceOnThePage(t *testing.T) {
	chromium(t)
	appEvent := startControlUI(t)
	rcv := newUIReceiver(t, http.StatusInternalServerError)
	code, body := uiAPI(t, http.MethodPost, "/projects/acme%2Fapi/hooks", map[string]any{"url": rcv.URL + "/ci"})
	var hook struct {
		ID int64 `json:"id"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &hook) != nil {
		t.Fatalf("adding a hook: %d %s", code, body)
	}
	appEvent()
	appEvent()
	rcv.next(t)
	rcv.next(t)
	rcv.status.Store(http.StatusOK) // the receiver is back

	b := newBrowser(t)
	signIn(b)
	b.do("opening the hook", chromedp.Click(chromedp.CSS(fmt.Sprintf("#hook-%d a.btn", hook.ID))))
	b.wait("recent events", `!document.querySelector('#events').hidden && document.querySelectorAll('#events-table tbody tr').length === 2`)
	b.do("opening Resend failed since…", chromedp.Click(chromedp.CSS("#replay summary")))
	b.do("counting", chromedp.Click(chromedp.CSS("#replay-count")))
	b.wait("the count", `document.querySelector('#replay-result').textContent.includes('2 failed deliveries since then would be sent again')`)
	b.do("resending", chromedp.Click(chromedp.CSS("#replay-submit")))
	b.wait("the replay queued", `document.querySelector('#flash').textContent.includes('2 failed deliveries queued to be sent again')`)
	rcv.next(t)
	rcv.next(t)
}
