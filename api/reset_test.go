package api

import (
	"maps"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

func TestResetSecretsWhenDeliveriesMove(t *testing.T) {
	base := func() *webhook.HookRecord {
		return &webhook.HookRecord{
			URL: "https://{host}/hook/{path}", Token: "tok",
			URLVariables:  map[string]string{"host": "recv.example", "path": "p1"},
			CustomHeaders: map[string]string{"Authorization": "Bearer x"},
		}
	}
	type want struct {
		token   bool
		vars    []string
		headers bool
	}
	cases := []struct {
		name   string
		change func(r *webhook.HookRecord) given
		want   want
	}{
		{"nothing", func(*webhook.HookRecord) given { return given{} }, want{true, []string{"host", "path"}, true}},
		{"path variable: same receiver", func(r *webhook.HookRecord) given {
			r.URLVariables["path"] = "p2"
			return given{urlVariables: map[string]string{"path": "p2"}}
		}, want{true, []string{"host", "path"}, false}},
		{"host variable: another receiver", func(r *webhook.HookRecord) given {
			r.URLVariables["host"] = "evil.example"
			return given{urlVariables: map[string]string{"host": "evil.example"}}
		}, want{false, []string{"host"}, false}},
		{"port variable", func(r *webhook.HookRecord) given {
			r.URLVariables["host"] = "recv.example:8443"
			return given{urlVariables: map[string]string{"host": "recv.example:8443"}}
		}, want{false, []string{"host"}, false}},
		{"explicit default port and case: same receiver", func(r *webhook.HookRecord) given {
			r.URLVariables["host"] = "RECV.example:443"
			return given{urlVariables: map[string]string{"host": "RECV.example:443"}}
		}, want{true, []string{"host", "path"}, false}},
		{"template", func(r *webhook.HookRecord) given {
			r.URL = "http://{host}/hook/{path}"
			return given{}
		}, want{false, nil, false}},
		{"template with new token and headers", func(r *webhook.HookRecord) given {
			r.URL, r.Token = "https://other.example/{path}", "new"
			return given{token: true, urlVariables: map[string]string{"path": "p1"}, customHeaders: map[string]string{"Authorization": "y"}}
		}, want{true, []string{"path"}, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			oldURL, oldVars := r.URL, maps.Clone(r.URLVariables)
			g := c.change(r)
			resetSecrets(r, oldURL, oldVars, g)
			if (r.Token != "") != c.want.token {
				t.Errorf("token kept = %v, want %v", r.Token != "", c.want.token)
			}
			if len(r.URLVariables) != len(c.want.vars) {
				t.Errorf("variables = %v, want keys %v", r.URLVariables, c.want.vars)
			}
			for _, k := range c.want.vars {
				if _, ok := r.URLVariables[k]; !ok {
					t.Errorf("variable %q cleared", k)
				}
			}
			if (len(r.CustomHeaders) > 0) != c.want.headers {
				t.Errorf("headers = %v, want kept %v", r.CustomHeaders, c.want.headers)
			}
		})
	}
}

// The API shows user info and query values masked; a client that sends the
// URL back as it read it does not change the URL, nor lose the token.
func TestApplyMaskedURLRoundTrip(t *testing.T) {
	const full = "https://alice:pw@recv.example/x?apikey=k"
	r := &webhook.HookRecord{URL: full, Token: "tok"}
	masked, name := "https://*****:*****@recv.example/x?apikey=*****", "renamed"
	(&hookInput{url: &masked, name: &name}).apply(r, DefaultSigningTokenOverlap)
	if r.URL != full || r.Token != "tok" || r.Name != name {
		t.Fatalf("after a round trip: %+v", r)
	}
	other := "https://*****:*****@other.example/x?apikey=*****"
	(&hookInput{url: &other}).apply(r, DefaultSigningTokenOverlap)
	if r.URL != other || r.Token != "" {
		t.Fatalf("after a new URL: %+v", r)
	}
}
