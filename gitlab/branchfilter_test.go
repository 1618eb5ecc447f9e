package gitlab

import (
	"strings"
	"testing"
)

func TestBranchFilterGitLabDocExamples(t *testing.T) {
	cases := []struct {
		strategy, filter, ref string
		want                  bool
	}{
		// The GitLab documentation's examples.
		{StrategyWildcard, "*-stable", "refs/heads/12-0-stable", true},
		{StrategyWildcard, "*-stable", "refs/heads/main", false},
		{StrategyWildcard, "production/*", "refs/heads/production/europe", true},
		{StrategyWildcard, "production/*", "refs/heads/production/europe/east", true}, // '*' spans '/'
		{StrategyWildcard, "production/*", "refs/heads/staging/europe", false},
		{StrategyRegex, "^(feature|hotfix)/", "refs/heads/feature/login", true},
		{StrategyRegex, "^(feature|hotfix)/", "refs/heads/hotfix/crash", true},
		{StrategyRegex, "^(feature|hotfix)/", "refs/heads/main", false},
		// Exact names, unanchored regex, blanks, all branches.
		{StrategyWildcard, "main", "refs/heads/main", true},
		{StrategyWildcard, "main", "refs/heads/main2", false},
		{StrategyWildcard, "main", "main", true},
		{StrategyRegex, "main", "refs/heads/not-main-x", true},
		{StrategyWildcard, "", "refs/heads/anything", true},
		{StrategyRegex, "", "refs/heads/anything", true},
		{StrategyAllBranches, "", "refs/heads/anything", true},
		{"", "rel*", "refs/heads/release", true},           // wildcard is the default
		{StrategyWildcard, "a.b", "refs/heads/axb", false}, // '.' is literal
	}
	for _, c := range cases {
		f, err := NewBranchFilter(c.strategy, c.filter)
		if err != nil {
			t.Fatalf("NewBranchFilter(%q, %q): %v", c.strategy, c.filter, err)
		}
		if got := f.Match(c.ref); got != c.want {
			t.Errorf("%s %q on %q = %v, want %v", c.strategy, c.filter, c.ref, got, c.want)
		}
	}
}

func TestBranchFilterRejectsInvalid(t *testing.T) {
	cases := []struct{ strategy, filter, wantErr string }{
		{StrategyRegex, "(unclosed", "not valid RE2 syntax"},
		{StrategyRegex, `(?=lookahead)`, "not valid RE2 syntax"},
		{StrategyWildcard, "bad..name", "not a valid branch name"},
		{StrategyWildcard, "with space", "not a valid branch name"},
		{StrategyWildcard, "ends/", "not a valid branch name"},
		{StrategyWildcard, strings.Repeat("a", MaxWildcardFilterLength+1), "too long"},
		{"glob", "x", "unknown branch filter strategy"},
	}
	for _, c := range cases {
		_, err := NewBranchFilter(c.strategy, c.filter)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("NewBranchFilter(%q, %.20q) error = %v, want %q", c.strategy, c.filter, err, c.wantErr)
		}
	}
}

// FuzzBranchFilter checks that no filter text panics or fails to terminate,
// and that a valid wildcard filter without '*' matches exactly its name.
func FuzzBranchFilter(f *testing.F) {
	for _, s := range []string{"*-stable", "production/*", "^(feature|hotfix)/", "main", "a**b", "(", "[x"} {
		f.Add(s, "refs/heads/"+s)
	}
	f.Fuzz(func(t *testing.T, filter, ref string) {
		for _, strategy := range []string{StrategyWildcard, StrategyRegex, StrategyAllBranches} {
			bf, err := NewBranchFilter(strategy, filter)
			if err != nil {
				continue
			}
			got := bf.Match(ref)
			if strategy == StrategyWildcard && bf.Filter() != "" && !strings.Contains(bf.Filter(), "*") {
				if want := BranchName(ref) == bf.Filter(); got != want {
					t.Fatalf("exact wildcard %q on %q = %v", bf.Filter(), ref, got)
				}
			}
			if strategy == StrategyWildcard && bf.Filter() != "" && !bf.Match("refs/heads/"+strings.ReplaceAll(bf.Filter(), "*", "")) {
				t.Fatalf("wildcard %q does not match its own name with '*' empty", bf.Filter())
			}
		}
	})
}

// Wildcard filters treat every character but '*' literally, as GitLab does,
// including those that glob syntax gives a meaning to.
func TestBranchFilterWildcardIsLiteralButStar(t *testing.T) {
	for _, c := range []struct {
		filter, ref string
		want        bool
	}{
		{"rel-{a,b}*", "refs/heads/rel-{a,b}-1", true},
		{"rel-{a,b}*", "refs/heads/rel-a-1", false},
		{"x!*", "refs/heads/x!y", true},
		{"a*b*c", "refs/heads/a/x/b/y/c", true},
		{"a*b*c", "refs/heads/a/x/c", false},
	} {
		f, err := NewBranchFilter(StrategyWildcard, c.filter)
		if err != nil {
			t.Fatalf("%q: %v", c.filter, err)
		}
		if got := f.Match(c.ref); got != c.want {
			t.Errorf("%q on %q = %v, want %v", c.filter, c.ref, got, c.want)
		}
	}
}
