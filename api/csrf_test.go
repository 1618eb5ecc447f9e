package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCrossSiteRefused(t *testing.T) {
	cop := http.NewCrossOriginProtection()
	cases := []struct {
		name   string
		method string
		hdr    map[string]string
		refuse bool
	}{
		{"cross-site form with a cookie", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Cookie": "s=1"}, true},
		{"same-site is another origin", "PUT", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"old browser, other Origin", "DELETE", map[string]string{"Origin": "http://evil.example"}, true},
		{"same origin", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, false},
		{"same Origin, no Sec-Fetch-Site", "POST", map[string]string{"Origin": "http://api.example"}, false},
		{"not a browser (curl)", "POST", nil, false},
		{"a read", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"PRIVATE-TOKEN", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "PRIVATE-TOKEN": "t"}, false},
		{"Bearer", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Bearer t"}, false},
		{"Basic is browser-attached", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Authorization": "Basic dTpw"}, true},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, "http://api.example/projects/a/hooks", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		if got := crossSiteRefused(cop, r); got != c.refuse {
			t.Errorf("%s: refused = %v, want %v", c.name, got, c.refuse)
		}
	}
}
