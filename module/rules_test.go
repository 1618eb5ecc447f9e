package module

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func mustRule(t *testing.T, r *CaptureRule) *CaptureRule {
	t.Helper()
	if err := r.check(); err != nil {
		t.Fatal(err)
	}
	return r
}

// The first rule whose request and response matchers match makes the
// event; statuses and methods that never carry an event stay untouched.
func TestCaptureRulesPickTheFirstMatch(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	c.Rules = []*CaptureRule{
		mustRule(t, &CaptureRule{Name: "created", Response: &caddyhttp.ResponseMatcher{StatusCode: []int{201}},
			Event: "issues", Project: "acme/api"}),
		mustRule(t, &CaptureRule{Name: "posts", matchers: caddyhttp.MatcherSets{{caddyhttp.MatchMethod{"POST"}}},
			Event: "note", Project: "acme/{json.name}",
			Template: `{"object_kind":"note","project":"{{@project}}","note":"{{text}}"}`}),
	}
	respond := func(status int, body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	serve(t, c, httptest.NewRequest(http.MethodPut, "/x", nil), respond(201, `{"object_kind":"issue"}`))
	serve(t, c, httptest.NewRequest(http.MethodPost, "/x", nil), respond(200, `{"name":"web","text":"a \"b\""}`))
	// 204 and HEAD never carry an event; a GET 200 matches no rule.
	serve(t, c, httptest.NewRequest(http.MethodPost, "/x", nil), respond(204, ""))
	serve(t, c, httptest.NewRequest(http.MethodHead, "/x", nil), respond(201, ""))
	serve(t, c, httptest.NewRequest(http.MethodGet, "/x", nil), respond(200, `{"name":"web"}`))

	evs := queued(t, c)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(evs), evs)
	}
	if evs[0].Trigger != "issues" || evs[0].Project != "acme/api" || string(evs[0].Body) != `{"object_kind":"issue"}` {
		t.Errorf("first event %+v", evs[0])
	}
	if evs[1].Trigger != "note" || evs[1].Project != "acme/web" ||
		string(evs[1].Body) != `{"object_kind":"note","project":"acme/web","note":"a \"b\""}` {
		t.Errorf("second event %s %s %s", evs[1].Trigger, evs[1].Project, evs[1].Body)
	}

	// A template over a body that is not JSON refuses the event.
	before := rejected(t, webhook.RejectPayload)
	rec := serve(t, c, httptest.NewRequest(http.MethodPost, "/x", nil), respond(200, "<html>ok</html>"))
	if rec.Body.String() != "<html>ok</html>" || len(queued(t, c)) != 2 {
		t.Fatal("a non-JSON body was queued or the response changed")
	}
	if d := rejected(t, webhook.RejectPayload) - before; d != 1 {
		t.Fatalf("invalid_payload rejections grew by %v", d)
	}
}

func TestCaptureRuleCheckRefusesWhatCanNeverWork(t *testing.T) {
	for _, r := range []*CaptureRule{
		{Project: "acme/api"},
		{Event: "issues"},
		{Event: "issue_created", Project: "acme/api"},
		{Event: "issues", Project: "acme/api", Response: &caddyhttp.ResponseMatcher{StatusCode: []int{404}}},
		{Event: "issues", Project: "acme/api", Response: &caddyhttp.ResponseMatcher{StatusCode: []int{204}}},
		{Event: "issues", Project: "acme/api", Template: `{"a": {{b}`},
	} {
		if err := r.check(); err == nil {
			t.Errorf("rule %+v was accepted", r)
		}
	}
}

// A rule's template renders at most max_body: one repeating a field of a
// body just under max_body is stopped there and the event rejected as too
// large, while the client's response is untouched.
func TestCaptureRuleTemplateIsBoundedByMaxBody(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	c.MaxBody = 64 << 10
	const ref = "{{text}}"
	c.Rules = []*CaptureRule{mustRule(t, &CaptureRule{Name: "amplifier", Event: "note", Project: "acme/api",
		Template: `{"object_kind":"note","note":"` + strings.Repeat(ref, 4000/len(ref)) + `"}`})}
	body := `{"text":"` + strings.Repeat("x", 60<<10) + `"}`
	before := rejected(t, webhook.RejectTooLarge)
	rec := serve(t, c, httptest.NewRequest(http.MethodPost, "/x", nil), func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})
	if rec.Body.String() != body {
		t.Fatal("the client's response changed")
	}
	if n := len(queued(t, c)); n != 0 {
		t.Fatalf("%d events queued, want the amplified one rejected", n)
	}
	if d := rejected(t, webhook.RejectTooLarge) - before; d != 1 {
		t.Fatalf("too_large rejections grew by %v, want 1", d)
	}
}
