package module

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestUICaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in, api, err string
	}{
		{in: `webhooks_ui`},
		{in: "webhooks_ui {\n\tapi /gitlab/api/v4\n}", api: "/gitlab/api/v4"},
		{in: `webhooks_ui extra`, err: "wrong argument count"},
		{in: "webhooks_ui {\n\tapi\n}", err: "wrong argument count"},
		{in: "webhooks_ui {\n\tapi /a /b\n}", err: "wrong argument count"},
		{in: "webhooks_ui {\n\ttheme dark\n}", err: `unrecognized webhooks_ui option "theme"`},
	} {
		m := new(UI)
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case err == nil && m.API != tc.api:
			t.Errorf("%q: api %q, want %q", tc.in, m.API, tc.api)
		}
	}
}

func TestUIProvisionAndServe(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := (&UI{API: "https://elsewhere.example/api/v4"}).Provision(ctx); err == nil {
		t.Error("an API on another origin was accepted")
	}
	m := &UI{}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// Under handle_path, the stripped path is "/" and the original one is
	// what the browser asked for.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	orig := req.Clone(req.Context())
	orig.URL.Path = "/-/webhooks"
	req = req.WithContext(context.WithValue(req.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
	w := httptest.NewRecorder()
	if err := m.ServeHTTP(w, req, nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "./webhooks/" {
		t.Errorf("GET /-/webhooks = %d %q", w.Code, w.Header().Get("Location"))
	}
	orig.URL.Path = "/-/webhooks/"
	req = req.WithContext(context.WithValue(req.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
	w = httptest.NewRecorder()
	_ = m.ServeHTTP(w, req, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `content="/api/v4"`) {
		t.Errorf("GET /-/webhooks/ = %d", w.Code)
	}
}
