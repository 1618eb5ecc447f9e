// Package process tests Caddy as a real process: built from cmd/caddy once
// per run, started with a Caddyfile on free loopback ports, killed with
// SIGKILL and started again on the same data directory, against a real
// redis-server, a real upstream app and a real receiver.
package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// caddyBin is the Caddy built by TestMain.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "webhooks-process-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", caddyBin, "github.com/grt-continuation/caddy-webhooks/cmd/caddy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building cmd/caddy: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built cmd/caddy in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// caddyProc is one Caddy process; Start/Kill may be called repeatedly, and
// every run shares the data directory (so the instance ID, and with it the
// consumer name, stays the same) and the listeners of its admin endpoint
// and its site, which the test holds from start to end and each run gets
// as descriptors (see adminFD): nothing else on this machine can take or
// share their ports meanwhile, not even while Caddy is down. (Picked free
// and bound by each run, they could be: Caddy binds with SO_REUSEPORT, so
// another Caddy on the same port starts without an error and the kernel
// spreads the connections over both.) A connection made while Caddy is
// down waits in the listener's backlog for the next run.
type caddyProc struct {
	t         *testing.T
	dir       string
	config    string
	adminAddr string
	httpAddr  string
	listeners []*net.TCPListener // admin, site
	cmd       *exec.Cmd
	exited    chan struct{}
	runs      int
}

// The descriptors a run gets its listeners on (ExtraFiles start at 3), as
// the Caddyfile names them: "admin fd/3", "bind fd/4".
const (
	adminFD = 3
	siteFD  = 4
)

func newCaddy(t *testing.T, caddyfile func(adminAddr, httpAddr string) string) *caddyProc {
	t.Helper()
	c := &caddyProc{t: t, dir: t.TempDir(), listeners: []*net.TCPListener{listen(t), listen(t)}}
	c.adminAddr, c.httpAddr = c.listeners[0].Addr().String(), c.listeners[1].Addr().String()
	c.config = filepath.Join(c.dir, "Caddyfile")
	if err := os.WriteFile(c.config, []byte(caddyfile(c.adminAddr, c.httpAddr)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	return c
}

// start launches Caddy and waits (bounded) until it serves.
func (c *caddyProc) start() {
	c.t.Helper()
	c.runs++
	logf, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("caddy-%d.log", c.runs)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(caddyBin, "run", "--config", c.config, "--adapter", "caddyfile")
	c.cmd.Env = append(os.Environ(), "HOME="+c.dir,
		"XDG_DATA_HOME="+filepath.Join(c.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(c.dir, "config"))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, l := range c.listeners {
		f, err := l.File()
		if err != nil {
			c.t.Fatalf("passing the listener on %s to caddy: %v", l.Addr(), err)
		}
		defer f.Close() // the child has its own copy once started
		c.cmd.ExtraFiles = append(c.cmd.ExtraFiles, f)
	}
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("starting caddy: %v", err)
	}
	c.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(c.cmd, c.exited)
	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.exited:
			c.t.Fatalf("caddy exited at start:\n%s", c.log())
		default:
		}
		// The request waits in the backlog until Caddy serves, or gives up.
		resp, err := probe.Get("http://" + c.adminAddr + "/config/")
		got := fmt.Sprint(err)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			got = fmt.Sprintf("%s: %q", resp.Status, body)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("caddy did not answer GET http://%s/config/ within 30s (last: %s):\n%s", c.adminAddr, got, c.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL (no shutdown of any kind) and waits for the exit.
func (c *caddyProc) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.t.Errorf("caddy (pid %d) did not exit after SIGKILL", c.cmd.Process.Pid)
	}
	c.cmd = nil
}

// log returns the output of every run so far.
func (c *caddyProc) log() string {
	var b strings.Builder
	for i := 1; i <= c.runs; i++ {
		data, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("caddy-%d.log", i)))
		fmt.Fprintf(&b, "--- run %d ---\n%s", i, data)
	}
	return b.String()
}

// metric reads one sample from the admin /metrics endpoint ("" if absent).
func (c *caddyProc) metric(name string) string {
	c.t.Helper()
	resp, err := http.Get("http://" + c.adminAddr + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// listen makes a loopback listener on a port of the kernel's choosing,
// held until the test ends.
func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}
