package webhook

import (
	"slices"
	"testing"
)

func TestRetryScheduleRoundTrips(t *testing.T) {
	in := []string{"10s", "90s", "5m", "1h30m", "2h", "1d", "150ms"}
	waits, err := ParseRetrySchedule(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10s", "1m30s", "5m", "1h30m", "2h", "24h", "150ms"}
	if got := FormatRetrySchedule(waits); !slices.Equal(got, want) {
		t.Fatalf("formatted %v, want %v", got, want)
	}
	for _, bad := range [][]string{{}, {"0s"}, {"8d"}, {"soon"}, {"1x"}} {
		if _, err := ParseRetrySchedule(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestAutoDisableRoundTrips(t *testing.T) {
	for in, want := range map[string]string{"gitlab": "gitlab", "off": "off", "permanent_after": "permanent_after 40",
		"permanent_after 7": "permanent_after 7"} {
		a, err := ParseAutoDisable(in)
		if err != nil || a.String() != want {
			t.Errorf("%q: %v %q, want %q", in, err, a.String(), want)
		}
	}
	for _, bad := range []string{"", "on", "permanent_after 1", "permanent_after x", "off 3", "gitlab off"} {
		if _, err := ParseAutoDisable(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
