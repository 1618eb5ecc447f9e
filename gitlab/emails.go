package gitlab

import (
	"bytes"
	"encoding/json"
	"strings"
)

// RedactedEmail replaces an e-mail address in a hook log's request data.
const RedactedEmail = "[REDACTED]"

// RedactEmails returns the JSON document doc with every string value that
// is an e-mail address replaced by "[REDACTED]", as GitLab's WebHookLog
// does before it stores request_data (redact_user_emails: each value that
// URI::MailTo::EMAIL_REGEXP matches whole). Keys, and strings that only
// contain an address ("Jane <jane@example.com>"), are kept. doc must be
// valid JSON; it is returned as is when nothing is redacted, and never
// modified.
func RedactEmails(doc []byte) []byte {
	// A payload without '@' (nor its JSON escape) holds no address.
	if bytes.IndexByte(doc, '@') < 0 && !bytes.Contains(doc, escapedAt) {
		return doc
	}
	var out []byte
	last := 0
	for i := 0; i < len(doc); i++ {
		q := bytes.IndexByte(doc[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end, escaped := jsonStringEnd(doc, start)
		i = end
		tok := doc[start : end+1]
		if bytes.IndexByte(tok, '@') < 0 && !(escaped && bytes.Contains(tok, escapedAt)) {
			continue
		}
		if isKey(doc, end+1) {
			continue
		}
		if escaped {
			var s string
			if json.Unmarshal(tok, &s) != nil || !IsEmail(s) {
				continue
			}
		} else if !isEmail(tok[1 : len(tok)-1]) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(doc))
		}
		out = append(out, doc[last:start]...)
		out = append(out, `"`+RedactedEmail+`"`...)
		last = end + 1
	}
	if out == nil {
		return doc
	}
	return append(out, doc[last:]...)
}

var escapedAt = []byte(`\u0040`)

// jsonStringEnd returns the index of the quote closing the JSON string
// opening at doc[i], and whether the string holds escapes.
func jsonStringEnd(doc []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(doc); {
		q := bytes.IndexByte(doc[j:], '"')
		if q < 0 {
			break
		}
		end = j + q
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for k := end - 1; k > i && doc[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return end, escaped || bytes.IndexByte(doc[i:end], '\\') >= 0
		}
		escaped = true
		j = end + 1
	}
	return len(doc) - 1, true
}

// isKey reports whether the string ending before doc[i] is an object key.
func isKey(doc []byte, i int) bool {
	for ; i < len(doc); i++ {
		switch doc[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// IsEmail reports whether s is an e-mail address as Ruby's
// URI::MailTo::EMAIL_REGEXP, which GitLab's log redaction uses, accepts it
// whole: a local part of [A-Za-z0-9.!#$%&'*+/=?^_`{|}~-], then '@', then
// dot-separated labels of letters, digits and inner hyphens, each at most
// 63 characters.
func IsEmail(s string) bool { return isEmail(s) }

func isEmail[T string | []byte](s T) bool {
	at := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '@' {
			at = i
			break
		}
		if !isAlnum(s[i]) && !strings.ContainsRune(".!#$%&'*+/=?^_`{|}~-", rune(s[i])) {
			return false
		}
	}
	if at <= 0 || at == len(s)-1 {
		return false
	}
	// Dot-separated labels: alphanumeric at both ends, hyphens inside.
	n := 0 // length of the current label
	for i := at + 1; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n == 0 || n > 63 || s[i-1] == '-' {
				return false
			}
			n = 0
			continue
		}
		c := s[i]
		switch {
		case isAlnum(c):
		case c == '-' && n > 0:
		default:
			return false
		}
		n++
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
