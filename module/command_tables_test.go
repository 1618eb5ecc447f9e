package module

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The admin API's answers read as aligned tables: what an operator types
// `caddy webhooks …` for.
func TestCommandTables(t *testing.T) {
	until := time.Date(2026, 12, 7, 16, 21, 3, 0, time.UTC)
	since := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	hooks, _ := json.Marshal([]hookInfo{
		{ID: 7, Name: "ci", Project: "acme/api", URL: "https://ci.example.com/{path}", AlertStatus: "temporarily_disabled",
			DisabledUntil: &until, Failures: 5},
		{ID: 12, Group: "acme", URL: "https://deploy.example.com/hook", Configured: true, AlertStatus: "executable", Ordered: true,
			OrderedQueue: &orderedQueue{Pending: 3, BlockedBy: &orderedBlock{EventID: "0193a1b2", Since: since, Attempts: 2, LastStatus: "503"}}},
		{ID: 4503599627370496, Name: "pager", URL: "https://ops.example.com/alerts", Configured: true, Operator: true, AlertStatus: "executable"},
	})
	for _, c := range []struct {
		name  string
		table tableFunc
		raw   string
		want  string
	}{
		{"stats", statsTable, `{"events":1,"ready":23,"scheduled":4,"dead_letters":0,"silent":false,"paused":true}`, `
EVENTS  READY  SCHEDULED  DEAD LETTERS  PAUSED  SILENT MODE
1       23     4          0             yes     no
`},
		{"hooks", hooksTable, string(hooks), `
ID                NAME   SCOPE             FROM    STATUS                                           FAILURES  ORDERED                                                                           URL
7                 ci     project acme/api  api     temporarily disabled until 2026-12-07 16:21:03Z  5         -                                                                                 https://ci.example.com/{path}
12                -      group acme        config  executable                                       0         3 waiting, blocked by 0193a1b2 since 2026-12-07 16:00:00Z (2 attempts, last 503)  https://deploy.example.com/hook
4503599627370496  pager  alerts            config  executable                                       0         -                                                                                 https://ops.example.com/alerts
`},
		{"dry run", replayTable, `{"status":"failed","since":"2026-12-07T16:00:00Z","until":"2026-12-07T18:00:00Z","hooks":[7,12],
			"matched":5,"by_hook":{"12":1,"7":4},"skipped":{"oversize":1},"notes":["the hooks' logs keep attempts for 48h0m0s"]}`, `
Dry run: 5 deliveries would be sent (failed, 2026-12-07 16:00:00Z to 2026-12-07 18:00:00Z).

HOOK  DELIVERIES
7     4
12    1
Left out: 1 (oversize).
Note: the hooks' logs keep attempts for 48h0m0s.
`},
		{"replays", replaysTable, `[{"id":3,"state":"running","status":"dead","since":"2026-12-07T16:00:00Z","until":"2026-12-07T18:00:00Z",
			"matched":100000,"sent":2400,"queued":2398,"gone":2,"created_at":"2026-12-07T18:00:01Z","finished_at":null}]`, `
ID  STATE    STATUS  RANGE                                         MATCHED  SENT  QUEUED  GONE  CREATED               FINISHED
3   running  dead    2026-12-07 16:00:00Z to 2026-12-07 18:00:00Z  100000   2400  2398    2     2026-12-07 18:00:01Z  -
`},
	} {
		var b bytes.Buffer
		if err := c.table(&b, []byte(c.raw)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := b.String(), strings.TrimPrefix(c.want, "\n"); got != want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", c.name, got, want)
		}
	}
}
