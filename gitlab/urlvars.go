package gitlab

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
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
		if v == "" || len(v) > MaxURLVariableValueLen {
			return fmt.Errorf("URL variable %q must have a value of 1 to %d characters", k, MaxURLVariableValueLen)
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
// references instead of their values, and user info is replaced.
func MaskURL(template string) string {
	u, err := url.Parse(template)
	if err != nil {
		// An unparsable template still must not leak user info.
		if at := strings.LastIndex(template, "@"); at >= 0 {
			if scheme := strings.Index(template, "://"); scheme >= 0 && scheme < at {
				return template[:scheme+3] + "xxxxx@" + template[at+1:]
			}
		}
		return template
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	// Keep the braces readable: url.URL would escape them in the path.
	s := u.String()
	return braces.Replace(s)
}

// braces undoes url.URL's escaping of the braces of URL variables.
var braces = strings.NewReplacer("%7B", "{", "%7D", "}")

// Limits on custom headers, from GitLab's JSON schema.
const (
	MaxCustomHeaders        = 20
	MaxCustomHeaderValueLen = 2048
)

var customHeaderName = regexp.MustCompile(`^[A-Za-z]+[0-9]*(?:[._-][A-Za-z0-9]+)*$`)

// ValidateCustomHeader checks one custom header against GitLab's schema.
func ValidateCustomHeader(name, value string) error {
	if !customHeaderName.MatchString(name) {
		return fmt.Errorf("illegal custom header name %q", name)
	}
	if value == "" || len(value) > MaxCustomHeaderValueLen || strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("custom header %q must have a value of 1 to %d characters on one line", name, MaxCustomHeaderValueLen)
	}
	return nil
}
