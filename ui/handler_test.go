package ui

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

func serve(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func newHandler(t *testing.T, opt Options) *Handler {
	t.Helper()
	h, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPage(t *testing.T) {
	h := newHandler(t, Options{})
	w := serve(t, h, http.MethodGet, "/")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "default-src 'none'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers: %v", w.Header())
	}
	body := w.Body.String()
	if !strings.Contains(body, `<meta name="webhooks-api" content="/api/v4">`) {
		t.Error("the page does not name the API")
	}
	// No inline script or style: the CSP would block them.
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(m, `src="assets/app.js?v=`) && !strings.Contains(m, `src="assets/integrations.js?v=`) {
			t.Errorf("inline script %s", m)
		}
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=|style=|<style`).MatchString(body) {
		t.Error("inline handler or style in the page")
	}
	// Every trigger of its kind is a checkbox; only testable ones are in the Test menu.
	for _, tr := range gitlab.Triggers() {
		if !strings.Contains(body, `name="`+tr.Field+`" data-trigger`) {
			t.Errorf("no checkbox for %s", tr.Field)
		}
	}
	if !strings.Contains(body, `data-test="push_events"`) || strings.Contains(body, `data-test="deployment_events"`) {
		t.Error("the Test menu lists the wrong triggers")
	}
	// Any path ending in / is the page (the prefix may be kept).
	if w := serve(t, h, http.MethodGet, "/-/webhooks/"); w.Code != http.StatusOK || w.Body.String() != body {
		t.Errorf("GET /-/webhooks/ = %d", w.Code)
	}
	if w := serve(t, h, http.MethodHead, "/"); w.Code != http.StatusOK {
		t.Errorf("HEAD / = %d", w.Code)
	}
}

func TestAssets(t *testing.T) {
	h := newHandler(t, Options{})
	for path, ct := range map[string]string{"/assets/app.js": "text/javascript", "/x/assets/app.css": "text/css"} {
		w := serve(t, h, http.MethodGet, path)
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), ct) || w.Body.Len() == 0 {
			t.Errorf("GET %s = %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		etag := w.Header().Get("ETag")
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("If-None-Match", etag)
		w2 := httptest.NewRecorder()
		h.ServeHTTP(w2, req)
		if etag == "" || w2.Code != http.StatusNotModified {
			t.Errorf("conditional GET %s = %d (etag %q)", path, w2.Code, etag)
		}
	}
	if w := serve(t, h, http.MethodGet, "/assets/page.html"); w.Code != http.StatusNotFound {
		t.Errorf("unknown asset = %d", w.Code)
	}
	js := serve(t, h, http.MethodGet, "/assets/app.js").Body.String()
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "eval(") {
		t.Error("the script builds HTML from strings")
	}
}

func TestRedirectAndMethods(t *testing.T) {
	h := newHandler(t, Options{})
	w := serve(t, h, http.MethodGet, "/webhooks")
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "./webhooks/" {
		t.Errorf("GET /webhooks = %d %q", w.Code, w.Header().Get("Location"))
	}
	// A path that looks like another host stays on this one.
	w = serve(t, h, http.MethodGet, "//evil.example")
	if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "./") {
		t.Errorf("redirect to %q", loc)
	}
	w = serve(t, h, http.MethodPost, "/")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d", w.Code)
	}
}

func TestAPIBase(t *testing.T) {
	h := newHandler(t, Options{APIBase: "/gitlab/api/v4/"})
	if body := serve(t, h, http.MethodGet, "/").Body.String(); !strings.Contains(body, `content="/gitlab/api/v4"`) {
		t.Error("api base not in the page")
	}
	for _, bad := range []string{"api/v4", "https://other.example/api/v4", "//other.example", `/api"><script>`, "/a/../b"} {
		if _, err := New(Options{APIBase: bad}); err == nil {
			t.Errorf("api %q accepted", bad)
		}
	}
}
