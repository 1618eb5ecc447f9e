package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// MaxURLLength is GitLab's limit on a hook's URL.
const MaxURLLength = 8192

// Problem is a rule of GitLab's hook model that a hook breaks. Problems
// sort in the order GitLab reports them: URL, branch filter, custom
// headers, then the rest.
type Problem int

// Problems.
const (
	BadScope Problem = iota + 1 // not exactly one project or group, or a bad path
	BadURL
	BadBranchFilter
	BadCustomHeaders
	BadURLVariables
	BadToken
	BadSigningToken // not whsec_ and the base64 of 32 bytes (GitLab 19)
	BadTemplate     // a custom webhook template over GitLab's 4096 characters
	BadPolicy       // a retry schedule or auto-disable rule out of bounds (ours)
	BadEgressProxy  // not an http, https or socks5 proxy URL
	BadClientTLS    // a certificate without its key, or PEM that does not parse
)

// InvalidError is a hook that breaks rules of GitLab's hook model: every
// problem found, in GitLab's order, and the details of the first.
type InvalidError struct {
	Problems []Problem
	Err      error
}

func (e *InvalidError) Error() string { return e.Err.Error() }

// Has tells whether the hook has problem p.
func (e *InvalidError) Has(p Problem) bool { return slices.Contains(e.Problems, p) }

// Invalid collects problems; its Err returns nil when there is none.
type Invalid struct{ e InvalidError }

// Add records problem p with err's details.
func (v *Invalid) Add(p Problem, err error) {
	if len(v.e.Problems) == 0 || p < v.e.Problems[0] {
		v.e.Err = err
	}
	v.e.Problems = append(v.e.Problems, p)
	slices.Sort(v.e.Problems)
}

// Err is an *InvalidError, or nil when no problem was added.
func (v *Invalid) Err() error {
	if len(v.e.Problems) == 0 {
		return nil
	}
	e := v.e
	return &e
}

// Validate checks the hook as GitLab does on save; the API, the Caddyfile
// and the hooks loaded from Redis all go through it. A failure is an
// *InvalidError.
func (h *Hook) Validate() error {
	var v Invalid
	h.Check(&v)
	return v.Err()
}

// Check adds the hook's problems to v (to be joined with others found
// while building the hook, such as a bad branch filter).
func (h *Hook) Check(v *Invalid) {
	switch {
	case h.Operator && (h.Project != "" || h.Group != ""):
		v.Add(BadScope, errors.New("an operator's alert endpoint belongs to no project or group"))
	case !h.Operator && (h.Project == "") == (h.Group == ""):
		v.Add(BadScope, errors.New("a hook belongs to exactly one project or group"))
	}
	for _, p := range []string{h.Project, h.Group} {
		if _, err := cleanPath(p); err != nil {
			v.Add(BadScope, err)
		}
	}
	if !h.validURL() {
		v.Add(BadURL, fmt.Errorf("invalid url given: %q must be an http or https URL", h.MaskedURL()))
	}
	if len(h.CustomHeaders) > gitlab.MaxCustomHeaders {
		v.Add(BadCustomHeaders, fmt.Errorf("at most %d custom headers", gitlab.MaxCustomHeaders))
	}
	for k, val := range h.CustomHeaders {
		if err := gitlab.ValidateCustomHeader(k, val); err != nil {
			v.Add(BadCustomHeaders, err)
			break
		}
	}
	if err := gitlab.ValidateURLVariables(h.URLVariables); err != nil {
		v.Add(BadURLVariables, err)
	}
	if err := gitlab.ValidateToken(h.Token); err != nil {
		v.Add(BadToken, err)
	}
	if h.Signing.Current != "" {
		if _, err := gitlab.ParseSigningToken(h.Signing.Current); err != nil {
			v.Add(BadSigningToken, err)
		}
	}
	// As GitLab, a template is not rendered on save: a broken one makes
	// each attempt an internal error.
	if n := utf8.RuneCountInString(h.CustomWebhookTemplate); n > gitlab.MaxCustomWebhookTemplate {
		v.Add(BadTemplate, fmt.Errorf("custom webhook template is too long (%d characters; maximum is %d)", n, gitlab.MaxCustomWebhookTemplate))
	}
	if h.RetrySchedule != nil {
		if err := CheckRetrySchedule(h.RetrySchedule); err != nil {
			v.Add(BadPolicy, err)
		}
	}
	if a := h.AutoDisable; a != nil {
		if _, err := ParseAutoDisable(a.String()); err != nil {
			v.Add(BadPolicy, err)
		}
	}
	if h.EgressProxy != "" && h.EgressProxy != EgressOff {
		if _, err := ParseProxy(h.EgressProxy); err != nil {
			v.Add(BadEgressProxy, err)
		}
	}
	if !h.TLS.IsZero() {
		if _, err := h.TLS.Config(); err != nil {
			v.Add(BadClientTLS, err)
		}
	}
}

// validURL: http or https with a host, once the variables are filled in.
func (h *Hook) validURL() bool {
	if h.URL == "" || len(h.URL) > MaxURLLength || strings.ContainsAny(h.URL, " \t\r\n") {
		return false
	}
	raw, err := gitlab.InterpolateURL(h.URL, h.URLVariables)
	if err != nil {
		return false
	}
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != ""
}
