package webhook

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A hook's own delivery policy, beside the app's: when failed deliveries
// are tried again (RetrySchedule) and how failures disable it
// (AutoDisable). Both are beyond GitLab's API, which has neither.

// The auto-disable modes.
const (
	// AutoDisableGitLab is the rule of GitLab's webhooks page: the 4th
	// consecutive failure disables for a while (1 min doubling to 24 h); a
	// 4xx then, or a 410 Gone at once, disables until re-enabled.
	AutoDisableGitLab = "gitlab"
	// AutoDisableOff never disables (GitLab's self-managed default, where
	// the auto_disabling_web_hooks flag is off).
	AutoDisableOff = "off"
	// AutoDisablePermanentAfter is newer GitLab's rule: every kind of
	// failure counts alike, the 4th disables for a while, and the
	// PermanentAfter-th (GitLab: 40) until re-enabled.
	AutoDisablePermanentAfter = "permanent_after"
)

// DefaultPermanentAfter is newer GitLab's count of consecutive failures
// that disables a hook until it is re-enabled.
const DefaultPermanentAfter = 40

// AutoDisable is how failures disable a hook. The zero value is GitLab's
// webhooks page rule.
type AutoDisable struct {
	Mode           string
	PermanentAfter int
}

// ParseAutoDisable reads "gitlab", "off" or "permanent_after [<n>]" (n:
// 2 and up, default 40).
func ParseAutoDisable(s string) (AutoDisable, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 1 && (f[0] == AutoDisableGitLab || f[0] == AutoDisableOff):
		return AutoDisable{Mode: f[0]}, nil
	case len(f) >= 1 && len(f) <= 2 && f[0] == AutoDisablePermanentAfter:
		n := DefaultPermanentAfter
		if len(f) == 2 {
			var err error
			if n, err = strconv.Atoi(f[1]); err != nil || n < 2 || n > 1000 {
				return AutoDisable{}, fmt.Errorf("auto_disable permanent_after takes a count of failures from 2 to 1000, got %q", f[1])
			}
		}
		return AutoDisable{Mode: AutoDisablePermanentAfter, PermanentAfter: n}, nil
	}
	return AutoDisable{}, fmt.Errorf("auto_disable is gitlab, off or permanent_after [<n>], got %q", s)
}

// String is the form ParseAutoDisable reads.
func (a AutoDisable) String() string {
	switch a.Mode {
	case AutoDisablePermanentAfter:
		return AutoDisablePermanentAfter + " " + strconv.Itoa(a.PermanentAfter)
	case "":
		return AutoDisableGitLab
	}
	return a.Mode
}

// Bounds of a retry schedule.
const (
	MaxRetrySchedule     = 30
	MaxRetryScheduleWait = 7 * 24 * time.Hour
)

// CheckRetrySchedule checks the waits of a retry schedule: between one
// and MaxRetrySchedule of them, each positive and at most a week.
func CheckRetrySchedule(waits []time.Duration) error {
	if len(waits) == 0 {
		return errors.New("retry_schedule needs at least one wait")
	}
	if len(waits) > MaxRetrySchedule {
		return fmt.Errorf("retry_schedule has %d waits, at most %d", len(waits), MaxRetrySchedule)
	}
	for _, w := range waits {
		if w <= 0 || w > MaxRetryScheduleWait {
			return fmt.Errorf("retry_schedule wait %s must be positive and at most %s", w, MaxRetryScheduleWait)
		}
	}
	return nil
}

// ParseRetrySchedule reads waits written as Go durations ("10s", "1m",
// "2h"; "1d" is a day).
func ParseRetrySchedule(words []string) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(words))
	for _, w := range words {
		d, err := parseWait(w)
		if err != nil {
			return nil, fmt.Errorf("retry_schedule: %q is not a duration (e.g. 10s, 5m, 2h, 1d)", w)
		}
		out = append(out, d)
	}
	return out, CheckRetrySchedule(out)
}

func parseWait(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatRetrySchedule writes waits as ParseRetrySchedule reads them.
func FormatRetrySchedule(waits []time.Duration) []string {
	out := make([]string, len(waits))
	for i, w := range waits {
		out[i] = shortDuration(w)
	}
	return out
}

// shortDuration writes 2h as 2h and 5m as 5m, not 2h0m0s and 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
