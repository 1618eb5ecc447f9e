package hooklog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// urlMask stands for a hidden part of the hook's URL, as the masked URL
// shows it (GitLab's UrlSanitizer).
const urlMask = "*****"

// minLoneSecret is the shortest URL credential or query value masked on its
// own. A shorter one is masked only in the form the URL writes it
// (user:password, name=value, the Basic credentials): masked wherever it
// occurs, a "1" or "on" would blank every such piece of an answer, and
// guard next to nothing.
const minLoneSecret = 4

// masker replaces a hook's secrets in text a receiver sent back (or
// echoed): URL variable values become {name} (as GitLab), the token,
// signing tokens and custom header values [REDACTED], and the URL's
// credentials (user info, the Basic credentials the HTTP client derives
// from it) and query values *****. Each is replaced in every spelling an
// echo gives it: as is, percent-encoded and JSON-escaped. Its Replacer,
// costly to build, is built only when a text holds a secret: most answers
// hold none.
type masker struct {
	secrets []string // every spelling, longest first
	pairs   []string // secret, replacement, … for the Replacer
	r       *strings.Replacer
}

// maskSub is one secret and what stands for it.
type maskSub struct{ secret, with string }

func newMasker(h *webhook.Hook) *masker {
	var subs []maskSub
	add := func(secret, with string, minLen int) {
		if len(secret) < minLen {
			return
		}
		for _, form := range secretForms(secret) {
			subs = append(subs, maskSub{form, with})
		}
	}
	for k, v := range h.URLVariables {
		add(v, "{"+k+"}", 1)
	}
	for _, s := range []string{h.Token, h.Signing.Current, h.Signing.Previous} {
		add(s, Redacted, 1)
	}
	for _, v := range h.CustomHeaders {
		add(v, Redacted, 1)
	}
	if strings.ContainsAny(h.URL, "@?") {
		urlSecrets(h, add)
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.SliceStable(subs, func(i, j int) bool { return len(subs[i].secret) > len(subs[j].secret) })
	m := &masker{}
	seen := map[string]bool{}
	for _, s := range subs {
		if s.secret != "" && !seen[s.secret] {
			seen[s.secret] = true
			m.pairs = append(m.pairs, s.secret, s.with)
			m.secrets = append(m.secrets, s.secret)
		}
	}
	return m
}

// urlSecrets adds the credentials and query values of the hook's URL. The
// parts written with {name} references are the variables' (masked as
// {name}); the Basic credentials are derived from the URL as sent.
func urlSecrets(h *webhook.Hook, add func(secret, with string, minLen int)) {
	if target, err := gitlab.InterpolateURL(h.URL, h.URLVariables); err == nil {
		if u, err := url.Parse(target); err == nil && u.User != nil {
			// What net/http sends as Authorization: Basic for user info.
			pw, _ := u.User.Password()
			add(base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw)), urlMask, 1)
		}
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return
	}
	if u.User != nil && !strings.Contains(u.User.String(), "{") {
		user := u.User.Username()
		if pw, ok := u.User.Password(); ok {
			add(u.User.String(), urlMask+":"+urlMask, 1)
			add(user+":"+pw, urlMask+":"+urlMask, 1)
			add(pw, urlMask, minLoneSecret)
		} else {
			// A user alone is the credential (a token as user name).
			add(u.User.String(), urlMask, 1)
			add(user, urlMask, minLoneSecret)
		}
	}
	for pair := range strings.SplitSeq(u.RawQuery, "&") {
		name, raw, ok := strings.Cut(pair, "=")
		if !ok || raw == "" || strings.Contains(raw, "{") {
			continue
		}
		add(pair, name+"="+urlMask, 1)
		add(raw, urlMask, minLoneSecret)
		if v, err := url.QueryUnescape(raw); err == nil && v != raw {
			add(name+"="+v, name+"="+urlMask, 1)
			add(v, urlMask, minLoneSecret)
		}
	}
}

// secretForms are the spellings of s an echo may carry: as is,
// percent-encoded (as a query or a path writes it), and each of those
// JSON-escaped as encoding/json writes it, as JavaScript does (no HTML
// escapes) and as PHP does ("/" as "\/").
func secretForms(s string) []string {
	if plain(s) {
		return []string{s}
	}
	var forms []string
	for _, p := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
		forms = append(forms, p)
		for _, j := range []string{jsonEscape(p, true), jsonEscape(p, false)} {
			forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// plain reports whether s is written the same way percent-encoded and
// JSON-escaped: only URL-unreserved characters (RFC 3986), as most tokens.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// jsonEscape is s JSON-encoded without its quotes.
func jsonEscape(s string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(s) // a string always encodes
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// MaskSecrets replaces the hook's secrets in text a receiver sent back, as
// the log does (URL variable values → {name}, token, signing tokens and
// custom header values → [REDACTED], URL credentials and query values →
// *****); the API uses it before showing such text.
func MaskSecrets(h *webhook.Hook, s string) string { return newMasker(h).apply(s) }

// MaskBody is MaskSecrets for a response body, forced to valid UTF-8, with
// the start of a secret that the read cap cut off at its end dropped too.
func MaskBody(h *webhook.Hook, b []byte) string { return newMasker(h).body(b, len(b)) }

func (m *masker) apply(s string) string {
	for _, secret := range m.secrets {
		if strings.Contains(s, secret) {
			if m.r == nil {
				m.r = strings.NewReplacer(m.pairs...)
			}
			return m.r.Replace(s)
		}
	}
	return s
}

// body masks then caps a response body, forced to valid UTF-8. A secret
// cut by the cap (its start at the very end) is dropped too.
func (m *masker) body(b []byte, limit int) string {
	s := truncateUTF8(m.apply(strings.ToValidUTF8(string(b), "\uFFFD")), limit)
	for _, secret := range m.secrets {
		for n := min(len(secret)-1, len(s)); n >= 4; n-- {
			if strings.HasSuffix(s, secret[:n]) {
				s = s[:len(s)-n]
				break
			}
		}
	}
	return s
}
