package gitlab

import (
	"net/http"
	"strings"
	"testing"
)

func TestInterpolateURL(t *testing.T) {
	vars := map[string]string{"path": "s3cr3t", "sub": "team"}
	got, err := InterpolateURL("https://{sub}.example.com/hooks/{path}?x={path}", vars)
	if err != nil || got != "https://team.example.com/hooks/s3cr3t?x=s3cr3t" {
		t.Fatalf("InterpolateURL = %q, %v", got, err)
	}
	_, err = InterpolateURL("https://example.com/{path}/{other}/{zz}", vars)
	if err == nil || !strings.Contains(err.Error(), "missing keys: [other, zz]") {
		t.Fatalf("missing keys error = %v", err)
	}
	// GitLab's reference pattern does not match {_x}: it stays literal.
	got, err = InterpolateURL("https://example.com/{_x}", map[string]string{"_x": "v"})
	if err != nil || got != "https://example.com/{_x}" {
		t.Fatalf("{_x} = %q, %v", got, err)
	}
}

func TestMaskURLHidesSecrets(t *testing.T) {
	cases := map[string]string{
		"https://user:pass@example.com/{path}":                "https://*****:*****@example.com/{path}",
		"https://alice@example.com/x":                         "https://*****:*****@example.com/x",
		"https://example.com/hooks/{token}?a=1":               "https://example.com/hooks/{token}?a=*****",
		"https://example.com/x?apikey=s3cr3t&k={key}&flag&e=": "https://example.com/x?apikey=*****&k={key}&*****&e=",
		"http://{sub}.example.com/x":                          "http://{sub}.example.com/x",
		"http://alice:secret@exa mple.com/x?apikey=s3cr3t":    "http://*****:*****@exa mple.com/x?apikey=*****",
		"http://alice:secret@{host}/x?apikey=s3cr3t&k={key}":  "http://*****:*****@{host}/x?apikey=*****&k={key}",
	}
	for in, want := range cases {
		if got := MaskURL(in); got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateURLVariablesAndHeaders(t *testing.T) {
	if err := ValidateURLVariables(map[string]string{"ok_1": "v"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"1bad": "v"}, {"bad-key": "v"}, {"k": ""}, {"k": strings.Repeat("v", 101)}} {
		if ValidateURLVariables(bad) == nil {
			t.Errorf("ValidateURLVariables(%v) accepted", bad)
		}
	}
	for _, ok := range [][2]string{{"X-Team", "platform"}, {"Authorization", "Bearer x"}, {"X-Gitlab-Tokens", "v"},
		{"X-Team", strings.Repeat("é", 2048)}, {"X-Team", "naïve ☃"}} {
		if err := ValidateCustomHeader(ok[0], ok[1]); err != nil {
			t.Errorf("ValidateCustomHeader(%q, %.20q): %v", ok[0], ok[1], err)
		}
	}
	if ValidateURLVariables(map[string]string{"k": "a\nb"}) == nil || ValidateURLVariables(map[string]string{"k": "\x1b[31m"}) == nil {
		t.Error("ValidateURLVariables accepted a control character")
	}
	if err := ValidateURLVariables(map[string]string{"k": strings.Repeat("é", 100)}); err != nil {
		t.Errorf("100 characters refused: %v", err)
	}
	if ValidateToken("a\rb") == nil || ValidateToken("a\x00") == nil || ValidateToken("ok token é") != nil {
		t.Error("ValidateToken: wrong verdict")
	}
	for _, bad := range [][2]string{
		{"X--Double", "v"}, {"X-Team-", "v"}, {"X-Team", ""}, {"X-Team", "a\r\nInjected: 1"},
		// Control characters, and length in characters: 2049 'é' are 2049 characters.
		{"X-Team", "a\x00b"}, {"X-Team", "tab\there"}, {"X-Team", "del\x7f"}, {"X-Team", strings.Repeat("é", 2049)},
		// Delivery headers, also spelled with '_' or another case.
		{"X-Gitlab-Token", "v"}, {"X_Gitlab_Token", "v"}, {"x_gitlab_event", "v"}, {"Idempotency_Key", "v"},
		{"Content-Type", "v"}, {"User_Agent", "v"},
		// Hop-by-hop and framing headers.
		{"Connection", "v"}, {"Keep-Alive", "v"}, {"TE", "v"}, {"Trailer", "v"}, {"Transfer_Encoding", "v"},
		{"Upgrade", "v"}, {"Proxy-Authorization", "v"}, {"proxy_anything", "v"}, {"Host", "v"}, {"Content-Length", "1"},
		// Standard Webhooks signing headers, and the body's encoding.
		{"Webhook-Signature", "v1,forged"}, {"webhook_id", "v"}, {"WEBHOOK-TIMESTAMP", "1"}, {"Content-Encoding", "gzip"},
		{"Content_Encoding", "br"},
	} {
		if ValidateCustomHeader(bad[0], bad[1]) == nil {
			t.Errorf("ValidateCustomHeader(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

// Receivers take credentials in Authorization and Cookie: custom headers
// may set them (the log masks their values, as every custom header's).
func TestCustomHeadersMayCarryCredentials(t *testing.T) {
	for _, h := range [][2]string{{"Authorization", "Bearer abc"}, {"Cookie", "session=abc"}, {"X-Api-Key", "abc"}} {
		if err := ValidateCustomHeader(h[0], h[1]); err != nil {
			t.Errorf("ValidateCustomHeader(%q, %q) = %v", h[0], h[1], err)
		}
	}
}

func TestDeliveryHeadersExactCaseAndPrecedence(t *testing.T) {
	h := http.Header{}
	d := DeliveryHeaders{
		Trigger: Push, UserAgent: "GitLab/18.6.0", Instance: "https://forge.example.com", Token: "t0k",
		WebhookUUID: "w", EventUUID: "e", IdempotencyKey: "k",
		Custom: map[string]string{"X-Gitlab-Token": "forged", "X-Team": "platform", "x-gitlab-event": "Nope"},
	}
	d.Apply(h)
	want := map[string]string{
		"Content-Type": "application/json", "User-Agent": "GitLab/18.6.0", "X-Gitlab-Event": "Push Hook",
		"X-Gitlab-Instance": "https://forge.example.com", "X-Gitlab-Token": "t0k",
		"X-Gitlab-Webhook-UUID": "w", "X-Gitlab-Event-UUID": "e", "Idempotency-Key": "k", "X-Team": "platform",
	}
	for k, v := range want {
		if got := h[k]; len(got) != 1 || got[0] != v {
			t.Errorf("header %q = %v, want [%q]", k, got, v)
		}
	}
	if len(h) != len(want) {
		t.Errorf("headers = %v, want exactly %d", h, len(want))
	}
	// Without a token and instance the headers are absent, not empty.
	h = http.Header{}
	d.Token, d.Instance, d.Custom = "", "", nil
	d.Apply(h)
	if _, ok := h["X-Gitlab-Token"]; ok {
		t.Error("X-Gitlab-Token sent without a token")
	}
	if _, ok := h["X-Gitlab-Instance"]; ok {
		t.Error("X-Gitlab-Instance sent without an instance")
	}
}

func FuzzInterpolateURL(f *testing.F) {
	f.Add("https://{a}.example.com/{b}", "x", "y")
	f.Fuzz(func(t *testing.T, tmpl, a, b string) {
		vars := map[string]string{"a": a, "b": b}
		out, err := InterpolateURL(tmpl, vars)
		if err != nil {
			return
		}
		// Every reference GitLab's pattern recognises is gone unless a
		// value reintroduced it.
		if !strings.Contains(a+b, "{") {
			for _, k := range URLTemplateKeys(out) {
				if k == "a" || k == "b" {
					t.Fatalf("reference {%s} left in %q", k, out)
				}
			}
		}
		_ = MaskURL(tmpl)
	})
}
