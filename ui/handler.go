// Package ui serves the Settings > Webhooks page: GitLab's webhook pages
// (the hooks of a project or group, the add and edit forms with their
// failing-hook banners, the Test dropdown, Recent events and their details
// with Resend Request) for hooks managed through the webhooks API.
//
// The page is one html/template document with embedded CSS and JavaScript:
// no build step. It holds no data of its own: the script calls the same
// REST API (/api/v4/projects/:id/hooks…) with the token the user signs in
// with, kept in the tab's sessionStorage and sent as Authorization: Bearer
// (which Caddy's logs redact, unlike PRIVATE-TOKEN), so what
// a user may see and change is exactly what the API allows, and secrets
// (hook tokens, URL variable values, custom header values), which the API
// never returns, never reach the browser. It is a plain http.Handler; the
// Caddy module mounts it.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

//go:embed assets/app.js assets/app.css assets/integrations.js
var assets embed.FS

// DefaultAPIBase is where GitLab clients find the API.
const DefaultAPIBase = "/api/v4"

// contentSecurityPolicy allows only the page's own script, style and API:
// no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Options configure the handler.
type Options struct {
	// APIBase is the path under which the webhooks API answers on the same
	// site, e.g. "/api/v4" (the default).
	APIBase string
	// RequestURL returns the URL as the client sent it (before a prefix was
	// stripped), for redirects. Default: the request's URL.
	RequestURL func(*http.Request) *url.URL
}

// asset is one embedded file.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the page and its assets.
type Handler struct {
	page   []byte
	assets map[string]asset
	opt    Options
}

// New renders the page once; it is the same for every request.
func New(opt Options) (*Handler, error) {
	if opt.APIBase == "" {
		opt.APIBase = DefaultAPIBase
	}
	if err := checkAPIBase(opt.APIBase); err != nil {
		return nil, err
	}
	opt.APIBase = strings.TrimRight(opt.APIBase, "/")
	if opt.RequestURL == nil {
		opt.RequestURL = func(r *http.Request) *url.URL { return r.URL }
	}
	h := &Handler{opt: opt, assets: map[string]asset{}}
	for name, ct := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
		"integrations.js": "text/javascript; charset=utf-8"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading embedded asset %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		h.assets[name] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	tpl, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("parsing the page template: %w", err)
	}
	var buf bytes.Buffer
	err = tpl.Execute(&buf, map[string]any{
		"APIBase":  opt.APIBase,
		"Triggers": triggerViews(),
		"JSTag":    strings.Trim(h.assets["app.js"].etag, `"`),
		"CSSTag":   strings.Trim(h.assets["app.css"].etag, `"`),
		"IntJSTag": strings.Trim(h.assets["integrations.js"].etag, `"`),
	})
	if err != nil {
		return nil, fmt.Errorf("rendering the page: %w", err)
	}
	h.page = buf.Bytes()
	return h, nil
}

// checkAPIBase accepts a path on this site: the page's CSP allows no other
// origin, and the API sends no CORS headers.
func checkAPIBase(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "?#\\ \t\r\n\"'<>") {
		return fmt.Errorf("api %q must be a path on this site, such as /api/v4", p)
	}
	if path.Clean(p) != strings.TrimRight(p, "/") && p != "/" {
		return errors.New("api " + p + " must be a clean path (no //, . or ..)")
	}
	return nil
}

// ServeHTTP serves the page at any path ending in "/" (its script routes
// with the URL fragment) and its assets at "assets/app.js" and
// "assets/app.css" below it. A path without the final slash is redirected
// to it, so the page's relative asset URLs resolve.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if dir, name := path.Split(p); strings.HasSuffix(dir, "/assets/") {
		a, ok := h.assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("ETag", a.etag)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
		return
	}
	orig := h.opt.RequestURL(r).Path
	if !strings.HasSuffix(orig, "/") {
		// Relative to the requested directory, so it cannot leave the site.
		w.Header().Set("Location", "./"+url.PathEscape(path.Base(orig))+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.page))
}

func setSecurityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}
