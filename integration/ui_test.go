package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	glwire "github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// Secrets typed into the page; none may ever come back to the browser.
const (
	uiHookToken   = "ui-hook-token-PLAINTEXT-4d2c"
	uiURLSecret   = "9f8e7d6c5b4a-path-secret"
	uiHeaderValue = "ui-header-PLAINTEXT-9f9f"
	uiScopedToken = "glpat-ui-scoped-0123456789ab"
	uiBase        = caddyBase + "/-/webhooks/"
	// uiScreenshotsEnv makes the test write docs/screenshots/*.png.
	uiScreenshotsEnv = "WEBHOOKS_UI_SCREENSHOTS"
)

// newUIReceiver answers JSON with the given status.
func newUIReceiver(t *testing.T, status int) *recordingReceiver {
	return newRecordingReceiver(t, status, func(w http.ResponseWriter, _ *http.Request, status int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"received":true}`)
	})
}

// chromium finds Debian's browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian: apt-get install chromium); skipping the browser test of the webhooks page")
	return ""
}

// browser drives one headless Chromium tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string // directory for screenshots; "" when not asked for
	mu      sync.Mutex
	console []string // errors the page logged (CSP violations, exceptions)
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these, Chromium's own connections are refused by a
		// closed network and slow everything down.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if os.Getenv(uiScreenshotsEnv) != "" {
		b.shots = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Start the browser, then listen to the page's console.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == "error" || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.t.Logf("%s: %s", time.Now().Format("15:04:05.000"), what)
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (flash: %q)", what, err, b.flash())
	}
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// flash is the page's notice and any console errors, for failure messages.
func (b *browser) flash() string {
	v, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector('#flash')||{}).textContent||''`))
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.console) > 0 {
		v += "; console: " + strings.Join(b.console, "; ")
	}
	return v
}

// wait polls a JavaScript condition, once the page has finished
// rendering (main is aria-busy while it loads).
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	b.t.Logf("%s: waiting for %s", time.Now().Format("15:04:05.000"), what)
	expr = "!document.querySelector('main').hasAttribute('aria-busy') && (" + expr + ")"
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash + '\n' + document.querySelector('main').innerText.slice(0, 2000)`))
		b.t.Fatalf("waiting for %s: %v (flash: %q)\npage: %s", what, err, b.flash(), page)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return evalJS[string](b, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// noSecrets checks the whole document and the tab's storage.
func (b *browser) noSecrets(view string) {
	b.t.Helper()
	doc := evalJS[string](b, `document.documentElement.outerHTML + JSON.stringify(sessionStorage) + JSON.stringify(localStorage) +
		Array.from(document.querySelectorAll('input, textarea'), (i) => i.value).join(' ')`)
	for _, s := range []string{uiHookToken, uiURLSecret, uiHeaderValue} {
		if strings.Contains(doc, s) {
			b.t.Errorf("%s: the page holds the secret %q", view, s)
		}
	}
}

// shot saves a full-page PNG (or one of an element: sel) under
// docs/screenshots when asked for.
func (b *browser) shot(name string, sel ...string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	act := chromedp.FullScreenshot(100)
	if len(sel) > 0 {
		act = chromedp.Screenshot(chromedp.CSS(sel[0]))
	}
	png, err := chromedp.Run(b.ctx, act)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// uiAPI calls the hooks API as the admin.
func uiAPI(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, apiBase+path, rd)
	req.Header.Set("Authorization", "Bearer "+apiAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, b := do(t, req)
	return resp.StatusCode, []byte(b)
}

type uiHook struct {
	ID           int64  `json:"id"`
	URL          string `json:"url"`
	AlertStatus  string `json:"alert_status"`
	TraceContext bool   `json:"trace_context"`
}

func uiHooks(t *testing.T) []uiHook {
	t.Helper()
	code, b := uiAPI(t, http.MethodGet, "/projects/acme%2Fapi/hooks", nil)
	var hs []uiHook
	if code != http.StatusOK || json.Unmarshal(b, &hs) != nil {
		t.Fatalf("listing hooks: %d %s", code, b)
	}
	return hs
}

// waitAPI polls the API until cond holds.
func waitAPI(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func uiEventCount(t *testing.T, hookID int64) int {
	t.Helper()
	code, b := uiAPI(t, http.MethodGet, fmt.Sprintf("/projects/acme%%2Fapi/hooks/%d/events", hookID), nil)
	var es []json.RawMessage
	if code != http.StatusOK || json.Unmarshal(b, &es) != nil {
		t.Fatalf("listing events: %d %s", code, b)
	}
	return len(es)
}

// The Settings > Webhooks page in a real browser, against a real Caddy,
// Redis, app and receivers: sign in, add a hook through the form (masked
// URL portion, secret token, triggers, branch filter, custom header), see
// an event the app caused in Recent events and its details, resend it,
// test through the dropdown with the keyboard, watch failing receivers
// produce the "Fails to connect" and "Failed to connect" badges and
// banners, re-enable by testing, delete; secrets never reach the page and
// a token outside its scope is refused as by the API.
func TestWebhooksPageInBrowser(t *testing.T) {
	chromium(t)
	redis := redistest.Start(t)
	recv := newUIReceiver(t, http.StatusOK)
	gone := newUIReceiver(t, http.StatusGone)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object_kind":"push","ref":"refs/heads/main","user_name":"Ada","project":{"path_with_namespace":"acme/api"},"commits":[]}`)
	}))
	t.Cleanup(upstream.Close)
	// An access log without any filter: the page's token must not reach it.
	accessLog := filepath.Join(t.TempDir(), "access.log")
	tester := caddytest.NewTester(t)
	tester.InitServer(testCaddyfile(`
	{
		webhooks {
			redis %s
			namespace uitest
			allow_local_requests
			encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
			max_attempts 1
			timeout 2s
			lease 4s
		}
	}
	localhost:9080 {
		log {
			output file %s
		}
		handle_path /api/v4/* {
			webhooks_api {
				token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
				token other %s scope other/project
				test_rate_limit 100
				resend_rate_limit 100
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
	`, redis.URL, accessLog, uiScopedToken, upstream.Listener.Addr()), "caddyfile")
	appEvent := func() {
		t.Helper()
		resp, body := post(t, "/app/push", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the app's push: %s", answered(resp, body))
		}
	}

	b := newBrowser(t)

	// Sign in: a wrong token is refused, the admin's opens the project.
	b.do("opening the page", chromedp.Navigate(uiBase), chromedp.WaitVisible(chromedp.CSS("#signin-token")))
	b.do("signing in with a wrong token",
		chromedp.SendKeys(chromedp.CSS("#signin-token"), "not-a-token-0123456789"),
		chromedp.SendKeys(chromedp.CSS("#signin-path"), "acme/api"),
		chromedp.Click(chromedp.CSS("#signin-form button[type=submit]")))
	b.wait("the 401 message", `!document.querySelector('#signin-error').hidden && document.querySelector('#signin-error').textContent.includes('did not accept')`)
	evalJS[bool](b, `(document.querySelector('#signin-token').value = '') === ''`)
	b.do("signing in",
		chromedp.SendKeys(chromedp.CSS("#signin-token"), apiAdminToken),
		chromedp.SendKeys(chromedp.CSS("#signin-token"), kb.Enter))
	b.wait("the empty hooks list", `!document.querySelector('#view-hooks').hidden && !document.querySelector('#hooks-empty').hidden`)

	// Add a hook through the form.
	b.do("opening the add form", chromedp.Click(chromedp.CSS("#hooks-add")), chromedp.WaitVisible(chromedp.CSS("#hook-url")))
	if got := evalJS[bool](b, `document.querySelector('input[name=member_events]').closest('[data-group-only]').hidden`); !got {
		t.Error("a project hook's form offers group-only triggers")
	}
	b.do("filling the form",
		chromedp.SendKeys(chromedp.CSS("#hook-url"), recv.URL+"/hook/"+uiURLSecret),
		chromedp.Click(chromedp.CSS("#hook-mask")),
		chromedp.WaitVisible(chromedp.CSS(".mask-value")),
		chromedp.SendKeys(chromedp.CSS(".mask-value"), uiURLSecret),
		chromedp.SendKeys(chromedp.CSS(".mask-key"), "path"),
		chromedp.SendKeys(chromedp.CSS("#hook-name"), "CI"),
		chromedp.SendKeys(chromedp.CSS("#hook-token"), uiHookToken),
		chromedp.Click(chromedp.CSS("input[name=tag_push_events]")),
		chromedp.Click(chromedp.CSS("input[name=branch_filter_strategy][value=wildcard]")),
		chromedp.SendKeys(chromedp.CSS("#hook-branch"), "ma*"),
		chromedp.Click(chromedp.CSS("#header-add")),
		chromedp.SendKeys(chromedp.CSS(".header-key"), "X-Team"),
		chromedp.SendKeys(chromedp.CSS(".header-value"), uiHeaderValue),
		chromedp.Click(chromedp.CSS("#hook-trace"))) // no traceparent for this receiver
	if got, want := b.text("#mask-preview-url"), recv.URL+"/hook/{path}"; got != want {
		t.Errorf("URL preview %q, want %q", got, want)
	}
	b.shot("add-form")
	b.do("adding the hook", chromedp.Click(chromedp.CSS("#form-submit")))
	b.wait("the new hook in the list", `document.querySelectorAll('#hook-list > li').length === 1 && document.querySelector('#flash').textContent.includes('Webhook was created')`)
	if got, want := b.text("#hook-list .hook-url"), recv.URL+"/hook/{path}"; got != want {
		t.Errorf("listed URL %q, want %q", got, want)
	}
	if got := b.text("#hook-list .hook-triggers"); !strings.Contains(got, "Push events") || !strings.Contains(got, "Tag push events") {
		t.Errorf("listed triggers %q", got)
	}
	b.noSecrets("hooks list")
	hooks := uiHooks(t)
	if len(hooks) != 1 || hooks[0].TraceContext {
		t.Fatalf("hooks %+v, want one, with trace_context off", hooks)
	}
	ci := hooks[0].ID

	// The app causes an event; the receiver gets the secrets; Recent events shows it.
	appEvent()
	got := recv.next(t)
	if got.Path != "/hook/"+uiURLSecret || got.Header.Get("X-Gitlab-Token") != uiHookToken || got.Header.Get("X-Team") != uiHeaderValue {
		t.Fatalf("delivery %s token=%q team=%q", got.Path, got.Header.Get("X-Gitlab-Token"), got.Header.Get("X-Team"))
	}
	waitAPI(t, "the logged delivery", func() bool { return uiEventCount(t, ci) == 1 })
	b.do("opening the hook", chromedp.Click(chromedp.CSS(fmt.Sprintf("#hook-%d a.btn", ci))))
	b.wait("Recent events", `document.querySelectorAll('#events-table tbody tr').length === 1`)
	if got := b.text("#events-table tbody tr"); !strings.Contains(got, "200") || !strings.Contains(got, "Push Hook") || !strings.Contains(got, "sec") {
		t.Errorf("event row %q", got)
	}
	if !evalJS[bool](b, `document.querySelector('#events-table tbody .badge').classList.contains('success')`) {
		t.Error("a 200 is not green")
	}
	if got := evalJS[string](b, `document.querySelector('#hook-url').value`); got != recv.URL+"/hook/{path}" {
		t.Errorf("edit form URL %q", got)
	}
	b.noSecrets("edit form")

	// Details, then Resend Request.
	b.do("opening the details", chromedp.Click(chromedp.CSS("#events-table tbody a")))
	b.wait("the details", `!document.querySelector('#view-event').hidden`)
	if got := b.text("#event-request-headers"); !strings.Contains(got, "X-Gitlab-Event: Push Hook") || !strings.Contains(got, "X-Gitlab-Token: [REDACTED]") {
		t.Errorf("request headers %q", got)
	}
	if got := b.text("#event-request-body"); !strings.Contains(got, `"user_name": "Ada"`) {
		t.Errorf("request body %q", got)
	}
	if got := b.text("#event-response-body"); !strings.Contains(got, `"received": true`) {
		t.Errorf("response body %q", got)
	}
	b.noSecrets("event details")
	b.shot("event-details")
	b.do("resending", chromedp.Click(chromedp.CSS("#event-resend")))
	again := recv.next(t)
	if again.Header.Get("Idempotency-Key") != got.Header.Get("Idempotency-Key") || again.Header.Get("X-Gitlab-Token") != uiHookToken {
		t.Errorf("resend headers %v", again.Header)
	}
	b.wait("the resend notice and the new entry", `document.querySelector('#flash').textContent.includes('Request resent: HTTP 200') && document.querySelectorAll('#events-table tbody tr').length === 2`)

	// Test from the dropdown, with the keyboard only.
	b.do("testing with the keyboard",
		chromedp.Focus(chromedp.CSS("#form-test-slot summary")),
		chromedp.KeyEvent(kb.Enter))
	b.wait("the open Test menu", `document.querySelector('#form-test-slot details').open`)
	b.do("choosing Push events", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	recv.next(t)
	b.wait("the test result", `document.querySelector('#flash').textContent.includes('Hook executed successfully')`)

	// Edit: a blank token field keeps the token; the masked value stays.
	b.do("renaming", chromedp.SendKeys(chromedp.CSS("#hook-name"), " pipeline"), chromedp.Click(chromedp.CSS("#form-submit")))
	b.wait("the saved edit", `document.querySelector('#flash').textContent.includes('Webhook was updated') && document.querySelector('#hook-name').value === 'CI pipeline'`)
	code, body := uiAPI(t, http.MethodGet, fmt.Sprintf("/projects/acme%%2Fapi/hooks/%d", ci), nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"token_present":true`) || !strings.Contains(string(body), `"url_variables":[{"key":"path"}]`) {
		t.Errorf("after the edit: %d %s", code, body)
	}
	b.noSecrets("edit form after saving")

	// A signing token generated in the page and a custom webhook template:
	// the receiver verifies the signature with a Standard Webhooks library.
	b.do("generating a signing token", chromedp.Click(chromedp.CSS("#signing-generate")))
	signing := evalJS[string](b, `document.querySelector('#hook-signing-token').value`)
	if _, err := glwire.ParseSigningToken(signing); err != nil {
		t.Fatalf("generated signing token %q: %v", signing, err)
	}
	b.shot("signing-token", ".field:has(#hook-signing-token)")
	b.do("setting a template",
		chromedp.SendKeys(chromedp.CSS("#hook-template"), `{"kind":"{{object_kind}}","who":"{{user_name}}"}`),
		chromedp.Click(chromedp.CSS("#form-submit")))
	b.wait("the saved token and template", `document.querySelector('#flash').textContent.includes('Webhook was updated') && document.querySelector('#hook-signing-token').value === '' && document.querySelector('#hook-template').value.includes('object_kind') && !document.querySelector('#signing-remove-label').hidden`)
	code, body = uiAPI(t, http.MethodGet, fmt.Sprintf("/projects/acme%%2Fapi/hooks/%d", ci), nil)
	if !strings.Contains(string(body), `"signing_token_present":true`) || !strings.Contains(string(body), `"custom_webhook_template":"{\"kind\":\"{{object_kind}}\"`) {
		t.Errorf("after setting a signing token and a template: %d %s", code, body)
	}
	appEvent()
	signed := recv.next(t)
	if wh, err := standardwebhooks.NewWebhook(signing); err != nil || wh.Verify(signed.Body, signed.Header) != nil || string(signed.Body) != `{"kind":"push","who":"Ada"}` {
		t.Errorf("signed, templated delivery %s %v (%v)", signed.Body, signed.Header, err)
	}
	if strings.Contains(evalJS[string](b, `document.documentElement.outerHTML`), signing) {
		t.Error("the page still shows the signing token after saving")
	}

	// Failing receivers: 4 failures disable the CI hook for a while; a
	// 410 disables the other one until it is re-enabled.
	code, body = uiAPI(t, http.MethodPost, "/projects/acme%2Fapi/hooks", map[string]any{"url": gone.URL + "/gone", "name": "Old CD"})
	if code != http.StatusCreated {
		t.Fatalf("adding a hook: %d %s", code, body)
	}
	recv.status.Store(http.StatusInternalServerError)
	for range 4 {
		appEvent()
		recv.next(t)
	}
	waitAPI(t, "both hooks failing", func() bool {
		hs := uiHooks(t)
		return len(hs) == 2 && hs[0].AlertStatus == "temporarily_disabled" && hs[1].AlertStatus == "disabled"
	})
	oldCD := uiHooks(t)[1].ID
	b.do("opening the list", chromedp.Click(chromedp.CSS("#where a")))
	b.wait("badges and banners", `document.querySelectorAll('#hook-list > li').length === 2 && document.querySelector('#hooks-banners').textContent.includes('Webhook fails to connect') && document.querySelector('#hooks-banners').textContent.includes('Webhook failed to connect')`)
	if got := b.text(fmt.Sprintf("#hook-%d .badge.warning", ci)); got != "Fails to connect" {
		t.Errorf("CI badge %q", got)
	}
	if got := b.text(fmt.Sprintf("#hook-%d .badge.danger", oldCD)); got != "Failed to connect" {
		t.Errorf("Old CD badge %q", got)
	}
	b.shot("hooks-failing")
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	if w := evalJS[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the list is %dpx wide on a 390px phone", w)
	}
	b.shot("phone")
	b.do("desktop width", chromedp.EmulateViewport(1280, 900))

	// The failing hook's page: banner, red rows; re-enable it by a test.
	b.do("opening the failing hook", chromedp.Click(chromedp.CSS(fmt.Sprintf("#hook-%d a.btn", ci))))
	b.wait("the banner and the failed events", `document.querySelector('#form-banners').textContent.includes('Webhook fails to connect') && document.querySelectorAll('#events-table tbody .badge.danger').length === 4`)
	b.shot("recent-events", "#events")
	recv.status.Store(http.StatusOK)
	b.do("testing to re-enable",
		chromedp.Click(chromedp.CSS("#form-test-slot summary")),
		chromedp.Click(chromedp.CSS(`#form-test-slot [data-test="push_events"]`)))
	recv.next(t)
	b.wait("the hook re-enabled", `document.querySelector('#flash').textContent.includes('Hook executed successfully') && document.querySelector('#form-banners').textContent === ''`)

	// Delete the dead hook from the list, confirming in the dialog.
	b.do("back to the list", chromedp.Click(chromedp.CSS("#where a")))
	b.wait("the list", `!document.querySelector('#view-hooks').hidden && document.querySelectorAll('#hook-list > li').length === 2`)
	b.do("deleting", chromedp.Click(chromedp.CSS(fmt.Sprintf("#hook-%d button.danger", oldCD))))
	b.wait("the confirmation dialog", `document.querySelector('#confirm-delete').open`)
	b.do("confirming", chromedp.Click(chromedp.CSS("#confirm-yes")))
	b.wait("the hook gone", `document.querySelector('#flash').textContent.includes('Webhook was deleted') && document.querySelectorAll('#hook-list > li').length === 1`)
	if hs := uiHooks(t); len(hs) != 1 || hs[0].ID != ci || hs[0].AlertStatus != "executable" {
		t.Errorf("hooks after delete: %+v", hs)
	}
	b.noSecrets("hooks list after delete")

	// A token outside its scope gets the API's 403.
	b.do("signing out", chromedp.Click(chromedp.CSS("#signout")))
	b.do("signing in with a scoped token",
		chromedp.WaitVisible(chromedp.CSS("#signin-token")),
		chromedp.SendKeys(chromedp.CSS("#signin-token"), uiScopedToken),
		chromedp.SendKeys(chromedp.CSS("#signin-path"), "acme/api"),
		chromedp.Click(chromedp.CSS("#signin-form button[type=submit]")))
	b.wait("the 403 message", `document.querySelector('#signin-error').textContent.includes('may not manage')`)

	// A group's page offers the group-only triggers, in the form and in Test.
	evalJS[bool](b, `(document.querySelector('#signin-token').value = '') === ''`)
	b.do("opening a group",
		chromedp.SendKeys(chromedp.CSS("#signin-token"), apiAdminToken),
		chromedp.Click(chromedp.CSS("input[name=kind][value=groups]")),
		chromedp.SetValue(chromedp.CSS("#signin-path"), "acme"),
		chromedp.Click(chromedp.CSS("#signin-form button[type=submit]")))
	b.wait("the group's empty list", `location.hash === '#/groups/acme/hooks' && !document.querySelector('#hooks-empty').hidden && document.querySelector('#where').textContent.includes('Group acme')`)
	b.do("opening the group form", chromedp.Click(chromedp.CSS("#hooks-add")), chromedp.WaitVisible(chromedp.CSS("input[name=member_events]")))

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		// The refused sign-ins are logged by the browser as failed loads.
		if strings.Contains(m, "401") || strings.Contains(m, "403") {
			continue
		}
		t.Errorf("browser console: %s", m)
	}

	// The page sends its token as Authorization: Bearer, which Caddy's
	// access log redacts.
	logged, err := os.ReadFile(accessLog)
	if err != nil || !strings.Contains(string(logged), "/api/v4/projects/") {
		t.Fatalf("access log: %v, %d bytes without the page's API calls", err, len(logged))
	}
	for _, tok := range []string{apiAdminToken, uiScopedToken} {
		if strings.Contains(string(logged), tok) {
			t.Errorf("the access log holds the token %q the page sent", tok)
		}
	}
}
