package webhook

import "unicode/utf8"

// InvalidUnicode returns the offset of the first byte of JSON text b that
// is not valid Unicode, or -1: a byte sequence that is not UTF-8, or a
// \u escape of a lone UTF-16 surrogate. RFC 8259 requires UTF-8, GitLab
// only sends it, and receivers in strict languages refuse a payload that
// breaks either rule (encoding/json lets both through). b must be valid
// JSON, where a backslash only occurs inside a string.
func InvalidUnicode(b []byte) int {
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return i
			}
			i += size
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			r := hex4(b[i+2:])
			switch {
			case r >= 0xdc00 && r <= 0xdfff: // a low surrogate first
				return i
			case r >= 0xd800 && r <= 0xdbff:
				if len(b) < i+12 || b[i+6] != '\\' || b[i+7] != 'u' {
					return i
				}
				if lo := hex4(b[i+8:]); lo < 0xdc00 || lo > 0xdfff {
					return i
				}
				i += 12
			default:
				i += 6
			}
		case c == '\\':
			i += 2 // \" \\ \/ \b \f \n \r \t
		default:
			i++
		}
	}
	return -1
}

// hex4 reads four hex digits (valid JSON has them after \u); -1 if not.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}
