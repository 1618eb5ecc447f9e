package integration

import (
	"net/http"
	"strings"
	"testing"
)

// A hook's retry schedule and auto-disable rule through the API: set,
// shown, cleared back to the app's (null), and refused with a clear 400
// when they make no sense, with nothing stored.
func TestHookDeliveryPolicyThroughTheAPI(t *testing.T) {
	f := startAPIFixture(t)
	hooks := "/api/v4/projects/acme%2Fapi/hooks"
	code, body, _ := f.raw(t, http.MethodPost, hooks, apiAdminToken, "application/json",
		[]byte(`{"url":"https://ci.example.com/hook","retry_schedule":["10s","1m",300],"auto_disable":"permanent_after 40"}`))
	if code != http.StatusCreated || !strings.Contains(body, `"retry_schedule":["10s","1m","5m"]`) ||
		!strings.Contains(body, `"auto_disable":"permanent_after 40"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	id := body[strings.Index(body, `"id":`)+5 : strings.Index(body, `,`)]
	code, body, _ = f.raw(t, http.MethodPut, hooks+"/"+id, apiAdminToken, "application/json",
		[]byte(`{"retry_schedule":[],"auto_disable":""}`))
	if code != http.StatusOK || !strings.Contains(body, `"retry_schedule":null`) || !strings.Contains(body, `"auto_disable":null`) {
		t.Fatalf("clearing: %d %s", code, body)
	}
	for _, c := range []struct{ body, want string }{
		{`{"url":"https://ci.example.com/x","retry_schedule":["soon"]}`, `retry_schedule does not have a valid value (retry_schedule: \"soon\" is not a duration`},
		{`{"url":"https://ci.example.com/x","retry_schedule":["10s",{"a":1}]}`, `retry_schedule[1] is invalid`},
		{`{"url":"https://ci.example.com/x","auto_disable":"never"}`, `auto_disable does not have a valid value (gitlab, off or permanent_after \u003cn\u003e)`},
	} {
		code, body, _ = f.raw(t, http.MethodPost, hooks, apiAdminToken, "application/json", []byte(c.body))
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want 400 with %s", c.body, code, body, c.want)
		}
	}
	code, body, _ = f.raw(t, http.MethodGet, hooks, apiAdminToken, "", nil)
	if code != http.StatusOK || strings.Count(body, `"id":`) != 2 { // the one made here and the configured one
		t.Errorf("hooks after refused creates: %d %s", code, body)
	}
}
