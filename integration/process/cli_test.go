package process

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
)

// cli runs `caddy webhooks <args> --address <admin>` and returns its
// output and whether it succeeded.
func (c *caddyProc) cli(args ...string) (stdout, stderr string, ok bool) {
	cmd := exec.Command(caddyBin, append(append([]string{"webhooks"}, args...), "--address", c.adminAddr)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// withAdminOrigin lets the admin API take requests that name it as their
// origin, as Caddy's CLI commands do: an admin endpoint on a listener
// passed as a descriptor (fd/N) knows no address of its own to allow.
func withAdminOrigin(caddyfile func(adminAddr, httpAddr string) string) func(adminAddr, httpAddr string) string {
	return func(adminAddr, httpAddr string) string {
		admin := fmt.Sprintf("admin fd/%d\n", adminFD)
		return strings.Replace(caddyfile(adminAddr, httpAddr), admin,
			fmt.Sprintf("admin fd/%d {\n\t\torigins %s\n\t}\n", adminFD, adminAddr), 1)
	}
}

// `caddy webhooks` prints tables for people, the admin API's JSON with
// --json, and the admin API's refusal as an error of its own.
func TestCLITablesAndJSON(t *testing.T) {
	redis := redistest.Start(t)
	rcv := newTally(t, 0)
	app := newApp(t)
	proc := newCaddy(t, withAdminOrigin(config(redis.URL, app.URL, rcv.URL+"/hook")))
	proc.start()

	out, errOut, ok := proc.cli("stats")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !ok || len(lines) != 2 || !strings.HasPrefix(lines[0], "EVENTS  READY  SCHEDULED  DEAD LETTERS  PAUSED  SILENT MODE") ||
		len(strings.Fields(lines[1])) != 6 {
		t.Errorf("stats: %q %q", out, errOut)
	}
	out, errOut, ok = proc.cli("hooks")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if !ok || len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "receiver") ||
		!strings.Contains(lines[1], "group acme") || !strings.Contains(lines[1], "executable") {
		t.Errorf("hooks: %q %q", out, errOut)
	}
	// Columns line up: each header starts where its values do.
	if at := strings.Index(lines[0], "SCOPE"); at < 0 || !strings.HasPrefix(lines[1][at:], "group acme") {
		t.Errorf("hooks table not aligned:\n%s", out)
	}
	out, _, ok = proc.cli("hooks", "--json")
	var hooks []map[string]any
	if !ok || json.Unmarshal([]byte(out), &hooks) != nil || len(hooks) != 1 || hooks[0]["alert_status"] != "executable" {
		t.Errorf("hooks --json: %q", out)
	}
	out, errOut, ok = proc.cli("replay", "--since", "1h", "--dry-run")
	if !ok || !strings.HasPrefix(out, "Nothing to send (failed, ") {
		t.Errorf("replay --dry-run: %q %q", out, errOut)
	}
	out, errOut, ok = proc.cli("replay", "--since", "1h", "--status", "bogus")
	if ok || !strings.Contains(errOut, `status must be failed, dead or all, got "bogus" (400 Bad Request)`) {
		t.Errorf("replay --status bogus: ok %v, %q %q", ok, out, errOut)
	}
	out, errOut, ok = proc.cli("replays")
	if !ok || strings.TrimSpace(out) != "ID  STATE  STATUS  RANGE  MATCHED  SENT  QUEUED  GONE  CREATED  FINISHED" {
		t.Errorf("replays: %q %q", out, errOut)
	}
}
