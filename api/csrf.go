package api

import "net/http"

// crossSiteRefused reports whether a write must be refused as a cross-site
// request forgery. A request that carries its token in PRIVATE-TOKEN or
// Authorization: Bearer is not at risk: a browser never adds those on its
// own, and another site's page cannot set them without a CORS preflight,
// which this API does not answer. Anything else (a session cookie or basic
// auth checked by forward_auth in front) a browser attaches to a form
// another site submits, so such writes must come from this origin:
// net/http's CrossOriginProtection decides from Sec-Fetch-Site, else
// Origin against Host; a client that sends neither (curl, GitLab's API
// clients) is not a browser and passes.
func crossSiteRefused(cop *http.CrossOriginProtection, r *http.Request) bool {
	if presented(r) != "" {
		return false
	}
	return cop.Check(r) != nil
}
