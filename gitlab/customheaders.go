package gitlab

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on custom headers, from GitLab's JSON schema; lengths count
// characters, as JSON schema does.
const (
	MaxCustomHeaders        = 20
	MaxCustomHeaderValueLen = 2048
)

var customHeaderName = regexp.MustCompile(`^[A-Za-z]+[0-9]*(?:[._-][A-Za-z0-9]+)*$`)

// ValidateCustomHeaderName checks a custom header name: GitLab's schema
// pattern, and none of the names a custom header must not set. GitLab's docs
// say custom headers "must not override delivery headers"; a name that
// differs from one only by case or by '_' for '-' (X_Gitlab_Token) would
// reach receivers that fold names (Rack, CGI, nginx with
// underscores_in_headers) as that header. Hop-by-hop headers (RFC 9110
// §7.6.1) and the framing headers the HTTP client sets itself would be
// dropped or would corrupt the request. The Standard Webhooks headers a
// signing token signs with (webhook-id, webhook-timestamp,
// webhook-signature) and Content-Encoding (the signed body is sent as is)
// are the delivery's too. Authorization and Cookie stay allowed, as
// receivers take credentials in them; the log shows their values as
// [REDACTED], as every custom header value.
func ValidateCustomHeaderName(name string) error {
	if !customHeaderName.MatchString(name) {
		return fmt.Errorf("illegal custom header name %q", name)
	}
	folded := foldHeaderName(name)
	if reservedHeaders[folded] || strings.HasPrefix(folded, "proxy-") {
		return fmt.Errorf("custom header %q is reserved: it is set by the delivery itself or is hop-by-hop", name)
	}
	return nil
}

// ValidateCustomHeader checks one custom header: its name
// (ValidateCustomHeaderName) and a value of 1 to 2048 characters without
// control characters.
func ValidateCustomHeader(name, value string) error {
	if err := ValidateCustomHeaderName(name); err != nil {
		return err
	}
	if value == "" || utf8.RuneCountInString(value) > MaxCustomHeaderValueLen || hasControl(value) {
		return fmt.Errorf("custom header %q must have a value of 1 to %d characters without control characters",
			name, MaxCustomHeaderValueLen)
	}
	return nil
}

// ValidateToken checks a secret token: GitLab refuses line breaks; any
// other control character would be refused by the HTTP client at delivery.
func ValidateToken(token string) error {
	if hasControl(token) {
		return fmt.Errorf("token must not contain control characters")
	}
	return nil
}

// foldHeaderName lower-cases name and reads '_' as '-'.
func foldHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// reservedHeaders are folded names a custom header may not take.
var reservedHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		// Set by every delivery.
		HeaderEvent, HeaderToken, HeaderInstance, HeaderWebhookUUID, HeaderEventUUID, HeaderIdempotencyKey,
		"Content-Type", "User-Agent",
		// Set by a signing token (Standard Webhooks), and the encoding of
		// the body it signs.
		HeaderStdWebhookID, HeaderStdWebhookTimestamp, HeaderStdWebhookSignature, "Content-Encoding",
		// Hop-by-hop (and Proxy-*, checked by prefix).
		"Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
		// Framing and routing, set by the HTTP client.
		"Host", "Content-Length",
	} {
		m[foldHeaderName(n)] = true
	}
	return m
}()

// hasControl reports whether s holds a control character (C0, DEL or C1).
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
