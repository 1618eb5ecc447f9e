// Package redistest starts a real redis-server for tests: on a free loopback
// port, with its own data directory, stopped when the test ends. No mocks:
// what the tests see is what production sees.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// URL is the redis:// URL for the server's database 0.
	URL string

	tb      testing.TB
	dir     string
	port    int
	extra   []string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// Start launches redis-server and waits until it answers PING. extra are
// additional redis-server arguments (e.g. "--appendonly", "yes"). The server
// is stopped and its directory removed when tb ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (apt-get install -y redis-server; scripts/test.sh does it for you): %v", err)
	}
	s := &Server{tb: tb, dir: tb.TempDir(), port: freePort(tb), extra: extra}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.URL = "redis://" + s.Addr + "/0"
	s.logPath = filepath.Join(s.dir, "redis.log")
	s.launch()
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) launch() {
	s.tb.Helper()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--logfile", s.logPath,
		"--protected-mode", "yes", "--maxmemory-policy", "noeviction",
	}, s.extra...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.exited)
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.Contains(fmt.Sprint(err), "NOAUTH") {
			return // an auth error is an answer too: tests that set ACLs log in themselves
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.logPath)
			s.tb.Fatalf("redis-server on %s did not answer PING: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a new go-redis client for the server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
}

// Stop kills the server (SIGKILL: no final save) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.tb.Errorf("redis-server on %s did not exit", s.Addr)
	}
	s.cmd = nil
}

// StopAndHold stops the server and keeps its port for the rest of the
// test, refusing every connection: another test's server started on the
// freed port would otherwise answer in its place.
func (s *Server) StopAndHold() {
	s.tb.Helper()
	s.Stop()
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		s.tb.Fatalf("holding the port of the stopped redis-server: %v", err)
	}
	s.tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// Freeze stops the server without closing its port (SIGSTOP): connections
// open, but nothing answers, as with a hung or partitioned Redis. Thaw
// undoes it; the test's cleanup thaws it too.
func (s *Server) Freeze() {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("freezing redis-server: %v", err)
	}
	s.tb.Cleanup(s.Thaw)
}

// Thaw lets a frozen server run again.
func (s *Server) Thaw() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart stops the server and starts it again on the same port and data
// directory. Without persistence (the default) it comes back empty, which
// is how tests reproduce a lost consumer group.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.launch()
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// String names the server in test output.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
