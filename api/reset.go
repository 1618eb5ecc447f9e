package api

import (
	"net"
	"net/url"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// given names the secrets a request sets; they survive a reset.
type given struct {
	token         bool
	signingToken  bool
	urlVariables  map[string]string
	customHeaders map[string]string
	clientTLS     bool // a client certificate or key
}

// resetSecrets clears the secrets of r that the request did not give again
// when its change moves the hook's deliveries, so that no secret follows the
// hook to another receiver. oldURL and oldVars are the hook's URL and URL
// variables before the change.
//
//   - A new URL template clears the token (GitLab's reset_token), the URL
//     variables and the custom headers.
//   - A new interpolated URL clears the custom headers (GitLab's
//     reset_custom_headers).
//   - A new scheme, host or port of the interpolated URL, however it came
//     about (a URL variable set or deleted too), clears the token and the
//     URL variables. GitLab keeps the token when only a variable changes.
//   - Either of the two above clears the signing tokens; a signing token
//     given with the change is kept, without the one it replaced (which
//     must not sign for the new destination), and the client certificate
//     and key, unless either is given with the change (then they must
//     match). The CA certificates and the egress proxy stay: neither goes
//     to the receiver.
func resetSecrets(r *webhook.HookRecord, oldURL string, oldVars map[string]string, g given) {
	oldDest, _ := gitlab.InterpolateURL(oldURL, oldVars)
	newDest, errNew := gitlab.InterpolateURL(r.URL, r.URLVariables)
	template := r.URL != oldURL
	moved := template || errNew != nil || origin(oldDest) != origin(newDest)
	if moved {
		if !g.token {
			r.Token = ""
		}
		if g.signingToken {
			r.Signing = gitlab.SigningTokens{Current: r.Signing.Current}
		} else {
			r.Signing = gitlab.SigningTokens{}
		}
		r.URLVariables = keepGiven(r.URLVariables, g.urlVariables)
		if !g.clientTLS {
			r.ClientCert, r.ClientKey = "", ""
		}
	}
	if moved || oldDest != newDest {
		r.CustomHeaders = keepGiven(r.CustomHeaders, g.customHeaders)
	}
}

// origin is the scheme, host and port a URL delivers to; "" if it does
// not parse.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// keepGiven returns the entries of m whose keys the request gave.
func keepGiven(m, givenKeys map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if _, ok := givenKeys[k]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
