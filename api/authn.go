package api

import "net/http"

// Authenticator checks a request's token the way the hooks API does, for
// other handlers that take the same tokens (webhooks_ingest): PRIVATE-TOKEN
// or Authorization: Bearer, compared in constant time, scoped to paths.
type Authenticator struct {
	a   *authenticator
	cop *http.CrossOriginProtection
}

// NewAuthenticator checks the tokens as the hooks API does (length,
// duplicates, scope paths).
func NewAuthenticator(tokens []Token, trustUpstream bool) (*Authenticator, error) {
	a, err := newAuthenticator(tokens, trustUpstream)
	if err != nil {
		return nil, err
	}
	return &Authenticator{a: a, cop: http.NewCrossOriginProtection()}, nil
}

// Caller is an authenticated caller.
type Caller struct{ p *principal }

// Name is the token's name ("upstream" when trust_upstream_auth let the
// request in), for logs.
func (c Caller) Name() string { return c.p.name }

// May reports whether the caller's scopes cover the project or group path.
func (c Caller) May(path string) bool { return c.p.may(path) }

// Authenticate finds the caller of a request.
func (a *Authenticator) Authenticate(r *http.Request) (Caller, bool) {
	p, ok := a.a.authenticate(r)
	return Caller{p: p}, ok
}

// CrossSiteRefused reports whether a write must be refused as a cross-site
// request forgery, as the API's writes are (see crossSiteRefused).
func (a *Authenticator) CrossSiteRefused(r *http.Request) bool { return crossSiteRefused(a.cop, r) }
