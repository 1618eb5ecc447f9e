package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Token is a credential for the API, sent as PRIVATE-TOKEN or
// Authorization: Bearer.
type Token struct {
	// Name identifies the token in logs; the value never appears.
	Name string
	// Value is the secret.
	Value string
	// Scopes are the full paths of the projects and groups the token may
	// manage, each with everything below it ("acme" covers group acme,
	// group acme/platform and project acme/platform/api). Empty: all.
	Scopes []string
}

type principal struct {
	name   string
	scopes []string // lower-cased; nil: all
}

// may reports whether the principal may manage the hooks of path.
func (p *principal) may(path string) bool {
	if p.scopes == nil {
		return true
	}
	path = strings.ToLower(path)
	for _, s := range p.scopes {
		if path == s || strings.HasPrefix(path, s+"/") {
			return true
		}
	}
	return false
}

// scopeOf is the scope under which the principal manages path: the
// longest of its scopes that covers it; "" for a principal without scopes.
func (p *principal) scopeOf(path string) string {
	path = strings.ToLower(path)
	best := ""
	for _, s := range p.scopes {
		if (path == s || strings.HasPrefix(path, s+"/")) && len(s) > len(best) {
			best = s
		}
	}
	return best
}

type authenticator struct {
	tokens  []tokenEntry
	upstrm  bool
	anybody principal
}

type tokenEntry struct {
	digest [sha256.Size]byte
	p      principal
}

func newAuthenticator(tokens []Token, trustUpstream bool) (*authenticator, error) {
	if len(tokens) == 0 && !trustUpstream {
		return nil, errors.New("no API tokens are configured; add a token, or trust_upstream_auth behind forward_auth")
	}
	a := &authenticator{upstrm: trustUpstream, anybody: principal{name: "upstream"}}
	seen := map[[sha256.Size]byte]string{}
	for _, t := range tokens {
		if t.Value == "" {
			return nil, fmt.Errorf("API token %q is empty (is its environment variable set?)", t.Name)
		}
		if len(t.Value) < 16 {
			return nil, fmt.Errorf("API token %q is too short: use at least 16 characters", t.Name)
		}
		d := sha256.Sum256([]byte(t.Value))
		if other, dup := seen[d]; dup {
			return nil, fmt.Errorf("API tokens %q and %q have the same value", other, t.Name)
		}
		seen[d] = t.Name
		e := tokenEntry{digest: d, p: principal{name: t.Name}}
		for _, s := range t.Scopes {
			s = strings.Trim(strings.TrimSpace(s), "/")
			if s == "" || !validPath(s) {
				return nil, fmt.Errorf("API token %q: scope %q is not a project or group path", t.Name, s)
			}
			e.p.scopes = append(e.p.scopes, strings.ToLower(s))
		}
		a.tokens = append(a.tokens, e)
	}
	return a, nil
}

// presented returns the token of the request: PRIVATE-TOKEN, else
// Authorization: Bearer.
func presented(r *http.Request) string {
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return t
	}
	scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(t)
	}
	return ""
}

// authenticate finds the principal of a request. Comparisons are of
// SHA-256 digests in constant time, over every configured token.
func (a *authenticator) authenticate(r *http.Request) (*principal, bool) {
	t := presented(r)
	if t == "" {
		if a.upstrm {
			return &a.anybody, true
		}
		return nil, false
	}
	d := sha256.Sum256([]byte(t))
	var found *principal
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			found = &a.tokens[i].p
		}
	}
	if found == nil && a.upstrm && len(a.tokens) == 0 {
		return &a.anybody, true
	}
	return found, found != nil
}
