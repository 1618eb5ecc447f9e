package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"
)

// createHook posts a hook and returns its id and JSON.
func (f *apiFixture) createHook(t *testing.T, body string) (int64, string) {
	t.Helper()
	st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json", []byte(body))
	var h struct{ ID int64 }
	if st != http.StatusCreated || json.Unmarshal([]byte(out), &h) != nil {
		t.Fatalf("create hook = %d %s", st, out)
	}
	return h.ID, out
}

// byPath waits for n requests and returns the one to path.
func (rc *apiReceiver) byPath(t *testing.T, n int, path string) apiReceived {
	t.Helper()
	r, ok := receivedByPath(rc.wait(t, n, 10*time.Second))[path]
	if !ok {
		t.Fatalf("no request to %s", path)
	}
	return r
}

// Changing a URL variable that moves the deliveries to another host must
// not take the token and custom headers along; a change that gives a new
// token keeps it; the variable's URL is checked as a save would.
func TestAPISecretsDoNotFollowTheHook(t *testing.T) {
	f := startAPIFixture(t)
	other := newAPIReceiver(t)
	recvHost, otherHost := strings.TrimPrefix(f.recv.URL, "http://"), strings.TrimPrefix(other.URL, "http://")
	hooks := "/api/v4/projects/acme%2Fapi/hooks"
	id, _ := f.createHook(t, fmt.Sprintf(`{"url":"http://{host}/moved","push_events":true,"token":%q,`+
		`"url_variables":[{"key":"host","value":%q}],"custom_headers":[{"key":"X-Team","value":%q}]}`,
		hookTokenSecret, recvHost, customHdrSecret))
	hook := fmt.Sprintf("%s/%d", hooks, id)

	f.event(t, "refs/heads/main")
	got := f.recv.byPath(t, 2, "/moved") // and /config, the configured hook
	if got.Header.Get("X-Gitlab-Token") != hookTokenSecret || got.Header.Get("X-Team") != customHdrSecret {
		t.Fatalf("first delivery headers = %v", got.Header)
	}

	// The host variable sends the hook elsewhere: its secrets stay behind.
	st, out, _ := f.raw(t, "PUT", hook+"/url_variables/host", apiAdminToken, "application/json", []byte(fmt.Sprintf(`{"value":%q}`, otherHost)))
	if st != http.StatusNoContent {
		t.Fatalf("PUT url_variables/host = %d %s", st, out)
	}
	st, out, _ = f.raw(t, "GET", hook, apiAdminToken, "", nil)
	if st != 200 || !strings.Contains(out, `"token_present":false`) || !strings.Contains(out, `"custom_headers":[]`) ||
		!strings.Contains(out, `"url_variables":[{"key":"host"}]`) {
		t.Fatalf("hook after the move = %d %s", st, out)
	}
	f.event(t, "refs/heads/main")
	moved := other.byPath(t, 1, "/moved")
	f.recv.byPath(t, 1, "/config")
	if moved.Header.Get("X-Gitlab-Token") != "" || moved.Header.Get("X-Team") != "" {
		t.Fatalf("secrets followed the hook: %v", moved.Header)
	}

	// A change that moves the hook and sets a token keeps that token.
	st, out, _ = f.raw(t, "PUT", hook, apiAdminToken, "application/json", []byte(fmt.Sprintf(
		`{"url":"http://{host}/again","token":"new-token-1","url_variables":[{"key":"host","value":%q}]}`, otherHost)))
	if st != 200 || !strings.Contains(out, `"token_present":true`) {
		t.Fatalf("PUT url and token = %d %s", st, out)
	}
	f.event(t, "refs/heads/main")
	if again := other.byPath(t, 1, "/again"); again.Header.Get("X-Gitlab-Token") != "new-token-1" {
		t.Fatalf("new token not sent: %v", again.Header)
	}
	f.recv.byPath(t, 1, "/config")

	// A variable is checked in the URL it makes, and for control characters.
	for _, c := range []struct{ method, path, body, want string }{
		{"PUT", "/url_variables/host", `{"value":"bad host"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/url_variables/host", `{"value":"@"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/url_variables/host", `{"value":"a\u0000b"}`, `{"error":"Illegal key or value"}`},
		{"DELETE", "/url_variables/host", ``, `{"error":"Could not unset variable"}`},
	} {
		st, out, _ := f.raw(t, c.method, hook+c.path, apiAdminToken, "application/json", []byte(c.body))
		if st != http.StatusUnprocessableEntity || out != c.want {
			t.Errorf("%s %s %s = %d %s, want 422 %s", c.method, c.path, c.body, st, out, c.want)
		}
	}
	assertNoPlaintextInRedis(t, f.redis, hookTokenSecret, customHdrSecret, "new-token-1")
}

// User info and query of a hook URL are encrypted at rest, as GitLab
// encrypts the URL, and masked in what the API returns.
func TestAPIURLCredentialsAtRest(t *testing.T) {
	f := startAPIFixture(t)
	const userinfo, query = "userinfo-PLAINTEXT-5a1e", "query-PLAINTEXT-9d0c"
	host := strings.TrimPrefix(f.recv.URL, "http://")
	_, out := f.createHook(t, fmt.Sprintf(`{"url":"http://alice:%s@%s/creds?apikey=%s","push_events":true}`, userinfo, host, query))
	if want := fmt.Sprintf(`"url":"http://*****:*****@%s/creds?apikey=*****"`, host); !strings.Contains(out, want) {
		t.Fatalf("created hook = %s, want %s", out, want)
	}
	f.event(t, "refs/heads/main")
	got := f.recv.byPath(t, 2, "/creds")
	if got.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:"+userinfo)) {
		t.Fatalf("delivery lost the user info: %v", got.Header)
	}
	assertNoPlaintextInRedis(t, f.redis, userinfo, query)
}

// A receiver that echoes the request back (its URL, its Authorization
// header, what it parsed of them) gets the URL's credentials and query
// values masked wherever its answer is shown: the test endpoint's 422 and
// Recent events.
func TestEchoedURLCredentialsAreMasked(t *testing.T) {
	f := startLogFixture(t)
	const user, password, query = "alice", "pw-ECHO-SECRET/1", "Q-ECHO-SECRET+2"
	echo := newRecordingReceiver(t, http.StatusBadRequest, func(w http.ResponseWriter, r *http.Request, status int) {
		u, p, _ := r.BasicAuth()
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]string{"uri": r.RequestURI, "authorization": r.Header.Get("Authorization"),
			"user": u, "password": p, "key": r.URL.Query().Get("key")})
		w.Write(b)
	})
	hookURL := "http://" + url.UserPassword(user, password).String() + "@" + strings.TrimPrefix(echo.URL, "http://") +
		"/x?key=" + url.QueryEscape(query)
	ph, _, err := f.client.Projects.AddProjectHook("acme/api", &gitlab.AddProjectHookOptions{URL: gitlab.Ptr(hookURL)})
	if err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	leaks := []string{password, url.QueryEscape(password), url.PathEscape(password), query, url.QueryEscape(query), basic}
	st, out, _ := f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/test/push_events", ph.ID), apiAdminToken, "", nil)
	if got := echo.next(t); got.Header.Get("Authorization") != "Basic "+basic {
		t.Fatalf("the receiver got Authorization %q", got.Header.Get("Authorization"))
	}
	if st != http.StatusUnprocessableEntity || !strings.Contains(out, `\"key\":\"*****\"`) {
		t.Fatalf("test = %d %s, want 422 with the masked echo", st, out)
	}
	es := f.waitEvents(t, ph.ID, 1)
	for where, text := range map[string]string{"test answer": out, "response body": es[0].ResponseBody,
		"response header": es[0].ResponseHeaders["X-Echo"], "url": es[0].URL} {
		for _, leak := range leaks {
			if strings.Contains(text, leak) {
				t.Errorf("%s %q holds %q", where, text, leak)
			}
		}
	}
	if es[0].ResponseHeaders["X-Echo"] != "Basic *****" {
		t.Errorf("echoed Authorization shows as %q", es[0].ResponseHeaders["X-Echo"])
	}
}

// Custom headers may not pose as a delivery header (in any spelling) or a
// hop-by-hop header; control characters are refused everywhere.
func TestAPIHeaderAndControlCharacterRules(t *testing.T) {
	f := startAPIFixture(t)
	hooks := "/api/v4/projects/acme%2Fapi/hooks"
	id, _ := f.createHook(t, fmt.Sprintf(`{"url":%q}`, f.recv.URL+"/h"))
	hook := fmt.Sprintf("%s/%d", hooks, id)
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "", `{"url":"http://example.com/","custom_headers":[{"key":"X_Gitlab_Token","value":"forged"}]}`, `{"error":"Custom headers must be a valid json schema"}`},
		{"POST", "", `{"url":"http://example.com/","custom_headers":[{"key":"Transfer-Encoding","value":"chunked"}]}`, `{"error":"Custom headers must be a valid json schema"}`},
		{"POST", "", `{"url":"http://example.com/","custom_headers":[{"key":"X-Team","value":"a\u0007b"}]}`, `{"error":"Custom headers must be a valid json schema"}`},
		{"POST", "", `{"url":"http://example.com/","token":"tok\u001b[0m"}`, `{"error":"Token must not contain control characters"}`},
		{"PUT", "", `{"custom_headers":[{"key":"proxy_authorization","value":"x"}]}`, `{"error":"Custom headers validation failed"}`},
		{"PUT", "/custom_headers/X_Gitlab_Token", `{"value":"forged"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/custom_headers/Connection", `{"value":"close"}`, `{"error":"Illegal key or value"}`},
		{"POST", "", `{"url":"http://example.com/","custom_headers":[{"key":"Webhook-Signature","value":"v1,forged"}]}`, `{"error":"Custom headers must be a valid json schema"}`},
		{"POST", "", `{"url":"http://example.com/","custom_headers":[{"key":"Content-Encoding","value":"gzip"}]}`, `{"error":"Custom headers must be a valid json schema"}`},
		{"PUT", "/custom_headers/webhook-id", `{"value":"msg_forged"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/custom_headers/Webhook_Timestamp", `{"value":"1"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/custom_headers/X-Team", `{"value":"a\tb"}`, `{"error":"Illegal key or value"}`},
		{"PUT", "/url_variables/unused", `{"value":"a\u007fb"}`, `{"error":"Illegal key or value"}`},
	} {
		path := hooks
		if c.method == "PUT" {
			path = hook + c.path
		}
		st, out, _ := f.raw(t, c.method, path, apiAdminToken, "application/json", []byte(c.body))
		if st != http.StatusUnprocessableEntity || out != c.want {
			t.Errorf("%s %s %s = %d %s, want 422 %s", c.method, path, c.body, st, out, c.want)
		}
	}
	// Receivers take credentials in Authorization and Cookie: allowed.
	for _, name := range []string{"Authorization", "Cookie"} {
		if st, out, _ := f.raw(t, "PUT", hook+"/custom_headers/"+name, apiAdminToken, "application/json", []byte(`{"value":"secret-value"}`)); st != http.StatusNoContent {
			t.Errorf("PUT custom header %s = %d %s, want 204", name, st, out)
		}
	}
}

// GitLab replaces every e-mail address value of a logged payload by
// [REDACTED], and a resend sends that logged payload.
func TestLogRedactsEmails(t *testing.T) {
	f := startLogFixture(t)
	id, _ := f.createHook(t, fmt.Sprintf(`{"url":%q,"push_events":true}`, f.recv.URL+"/mail"))
	// No push yet: the test sends GitLab's sample push, which has e-mails.
	st, out, _ := f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/test/push_events", id), apiAdminToken, "", nil)
	if st != http.StatusCreated {
		t.Fatalf("test push = %d %s", st, out)
	}
	if sent := f.recv.next(t); !strings.Contains(string(sent.Body), `"user_email":"john@example.com"`) {
		t.Fatalf("test push body = %s", sent.Body)
	}
	e := f.waitEvents(t, id, 1)[0]
	if data := string(e.RequestData); strings.Contains(data, "@example.com") ||
		!strings.Contains(data, `"user_email":"[REDACTED]"`) || !strings.Contains(data, `"email":"[REDACTED]"`) {
		t.Fatalf("logged request_data = %s", data)
	}
	st, out, _ = f.raw(t, "POST", fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d/events/%d/resend", id, e.ID), apiAdminToken, "", nil)
	if st != http.StatusCreated {
		t.Fatalf("resend = %d %s", st, out)
	}
	if resent := f.recv.next(t); strings.Contains(string(resent.Body), "@example.com") || !strings.Contains(string(resent.Body), `"user_email":"[REDACTED]"`) {
		t.Fatalf("resent body = %s", resent.Body)
	}
	assertNoPlaintextInRedis(t, f.redis, "john@example.com", "test@example.com")
}
