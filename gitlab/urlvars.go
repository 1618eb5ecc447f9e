package gitlab

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits on URL variables, from GitLab's JSON schema.
const (
	MaxURLVariables        = 20
	MaxURLVariableValueLen = 100
)

var (
	// urlVariableKey is the schema's key pattern.
	urlVariableKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// urlVariableRef is GitLab's VARIABLE_REFERENCE_RE: what {name} it substitutes.
	urlVariableRef = regexp.MustCompile(`\{([A-Za-z]+[0-9]*(?:[._-][A-Za-z0-9]+)*)\}`)
)

// ValidateURLVariables checks a hook's variables against GitLab's schema.
func ValidateURLVariables(vars map[string]string) error {
	if len(vars) > MaxURLVariables {
		return fmt.Errorf("too many URL variables (maximum is %d)", MaxURLVariables)
	}
	for k, v := range vars {
		if !urlVariableKey.MatchString(k) {
			return fmt.Errorf("illegal URL variable name %q", k)
		}
		if v == "" || utf8.RuneCountInString(v) > MaxURLVariableValueLen {
			return fmt.Errorf("URL variable %q must have a value of 1 to %d characters", k, MaxURLVariableValueLen)
		}
		if hasControl(v) {
			return fmt.Errorf("URL variable %q must not contain control characters", k)
		}
	}
	return nil
}

// URLTemplateKeys lists the {name} references in a URL template, in order of
// first use.
func URLTemplateKeys(template string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, m := range urlVariableRef.FindAllStringSubmatch(template, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			keys = append(keys, m[1])
		}
	}
	return keys
}

// InterpolateURL replaces every {name} in template with its variable. A
// reference without a variable is an error, as GitLab's "Invalid URL
// template. Missing keys: [...]".
func InterpolateURL(template string, vars map[string]string) (string, error) {
	if !strings.Contains(template, "{") {
		return template, nil // no reference: nothing to look up (most hooks)
	}
	var missing []string
	out := urlVariableRef.ReplaceAllStringFunc(template, func(ref string) string {
		name := ref[1 : len(ref)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return ref
		}
		return v
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("invalid URL template: missing keys: [%s]", strings.Join(missing, ", "))
	}
	return out, nil
}

// MaskURL returns a URL safe to log or display: the template keeps its {name}
// references instead of their values, user info becomes "*****:*****" as in
// GitLab's log (Gitlab::UrlSanitizer.sanitize_masked_url), and each query
// value that is not a {name} reference becomes "*****".
func MaskURL(template string) string {
	u, err := url.Parse(template)
	if err != nil {
		// An unparsable template still must not leak user info or query.
		s := template
		if q := strings.IndexByte(s, '?'); q >= 0 {
			s = s[:q] + "?" + maskQuery(s[q+1:])
		}
		if at := strings.LastIndex(s, "@"); at >= 0 {
			if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
				s = s[:scheme+3] + mask + ":" + mask + "@" + s[at+1:]
			}
		}
		return s
	}
	if u.User != nil {
		u.User = url.UserPassword(mask, mask)
	}
	u.RawQuery = maskQuery(u.RawQuery)
	u.ForceQuery = false
	// Keep the braces and the mask readable: url.URL would escape them.
	return unescapeMask.Replace(u.String())
}

// mask stands for a hidden part of a URL, as in GitLab's UrlSanitizer.
const mask = "*****"

// unescapeMask undoes url.URL's escaping of the braces of URL variables
// and of the mask in user info.
var unescapeMask = strings.NewReplacer("%7B", "{", "%7D", "}", "%2A", "*")

// maskQuery hides every query value, keeping names and {name} references.
func maskQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, value, hasValue := strings.Cut(p, "=")
		switch {
		case !hasValue && p != "":
			parts[i] = mask
		case hasValue && value != "" && !isReference(value):
			parts[i] = name + "=" + mask
		}
	}
	return strings.Join(parts, "&")
}

// isReference reports whether s is exactly one {name} reference.
func isReference(s string) bool {
	s = unescapeMask.Replace(s)
	loc := urlVariableRef.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}
