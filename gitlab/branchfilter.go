package gitlab

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gobwas/glob"
)

// Branch filter strategies, as the API's branch_filter_strategy names them.
const (
	StrategyWildcard    = "wildcard"
	StrategyRegex       = "regex"
	StrategyAllBranches = "all_branches"
)

// MaxWildcardFilterLength is GitLab's limit on a wildcard branch filter.
const MaxWildcardFilterLength = 4000

// BranchFilter decides which pushed branches a hook hears about. It applies to
// push events only; tag pushes and every other trigger pass. The zero value
// matches every branch.
type BranchFilter struct {
	strategy string
	filter   string
	re       *regexp.Regexp // regex; nil otherwise
	glob     glob.Glob      // wildcard with '*'; nil otherwise
}

// NewBranchFilter validates and compiles a filter the way GitLab does:
//   - all_branches, or a blank filter: every branch;
//   - wildcard (the default): exact name, or '*' standing for any run of
//     characters, '/' included ("feature/*" matches "feature/a/b");
//   - regex: RE2, unanchored, like GitLab's UntrustedRegexp ("main" also
//     matches "not-main-x"). RE2 runs in linear time, so a filter cannot
//     be used for ReDoS.
func NewBranchFilter(strategy, filter string) (BranchFilter, error) {
	if strategy == "" {
		strategy = StrategyWildcard
	}
	filter = strings.Join(strings.Fields(filter), " ") // GitLab squishes whitespace
	switch strategy {
	case StrategyAllBranches:
		return BranchFilter{strategy: strategy}, nil
	case StrategyWildcard:
		if filter == "" {
			return BranchFilter{strategy: strategy}, nil
		}
		if len(filter) > MaxWildcardFilterLength {
			return BranchFilter{}, fmt.Errorf("branch filter is too long (maximum is %d characters)", MaxWildcardFilterLength)
		}
		if err := validRefName(strings.ReplaceAll(filter, "*", "x")); err != nil {
			return BranchFilter{}, fmt.Errorf("branch filter %q is not a valid branch name: %w", filter, err)
		}
		bf := BranchFilter{strategy: strategy, filter: filter}
		if strings.Contains(filter, "*") {
			// Only '*' is special in GitLab's wildcard filters: every other
			// character is quoted. Without separators, '*' spans '/'.
			parts := strings.Split(filter, "*")
			for i, p := range parts {
				parts[i] = glob.QuoteMeta(p)
			}
			g, err := glob.Compile(strings.Join(parts, "*"))
			if err != nil {
				return BranchFilter{}, fmt.Errorf("branch filter %q is not a valid branch name: %w", filter, err)
			}
			bf.glob = g
		}
		return bf, nil
	case StrategyRegex:
		if filter == "" {
			return BranchFilter{strategy: strategy}, nil
		}
		re, err := regexp.Compile(filter)
		if err != nil {
			return BranchFilter{}, fmt.Errorf("branch filter is not valid RE2 syntax: %w", err)
		}
		return BranchFilter{strategy: strategy, filter: filter, re: re}, nil
	default:
		return BranchFilter{}, fmt.Errorf("unknown branch filter strategy %q (want %s, %s or %s)",
			strategy, StrategyWildcard, StrategyRegex, StrategyAllBranches)
	}
}

// Strategy returns the filter's strategy.
func (f BranchFilter) Strategy() string {
	if f.strategy == "" {
		return StrategyWildcard
	}
	return f.strategy
}

// Filter returns the filter text ("" for all branches).
func (f BranchFilter) Filter() string { return f.filter }

// Match reports whether a push to ref (a full "refs/heads/x" or a bare branch
// name) passes the filter. A pointer receiver: the fan-out calls it for
// every candidate hook, and the filter is not small.
func (f *BranchFilter) Match(ref string) bool {
	if f.filter == "" || f.strategy == StrategyAllBranches {
		return true
	}
	branch := BranchName(ref)
	switch {
	case f.glob != nil:
		return f.glob.Match(branch)
	case f.re != nil:
		return f.re.MatchString(branch)
	}
	return branch == f.filter
}

// BranchName strips "refs/heads/" from a ref, as Gitlab::Git.branch_name does.
func BranchName(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// validRefName applies git's check-ref-format rules for a branch name.
func validRefName(name string) error {
	switch {
	case name == "" || name == "@":
		return errors.New("empty name")
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.HasPrefix(name, "-"), strings.HasPrefix(name, "/"), strings.HasSuffix(name, "/"):
		return errors.New("must not start with '-' or '/' or end with '/'")
	case strings.HasSuffix(name, "."), strings.HasSuffix(name, ".lock"):
		return errors.New("must not end with '.' or '.lock'")
	case strings.Contains(name, ".."), strings.Contains(name, "//"), strings.Contains(name, "@{"):
		return errors.New("must not contain '..', '//' or '@{'")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?[\\", c) {
			return fmt.Errorf("must not contain %q", c)
		}
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return errors.New("no path component may start with '.'")
		}
	}
	return nil
}
