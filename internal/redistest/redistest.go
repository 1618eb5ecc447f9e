// Package redistest starts a real redis-server for tests: on a free loopback
// port, with its own data directory, stopped when the test ends. No mocks:
// what the tests see is what production sees.
package redistest

import (
	"context"
	"errors"
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
	// reserved is a socket bound to port while the server is stopped (0:
	// none).
	reserved int
}

// Start launches redis-server and waits until it answers PING. extra are
// additional redis-server arguments (e.g. "--appendonly", "yes"). The server
// is stopped and its directory removed when tb ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	return start(tb, func() []string { return extra })
}

// portTries bounds the ports tried for one server.
const portTries = 5

// start is Start with arguments made anew for each port tried (a port of
// their own, such as a TLS port, is picked again too). redis-server cannot
// take a listener, so its port is picked free and bound a moment later;
// when another process took it meanwhile, another port is tried.
func start(tb testing.TB, extra func() []string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (apt-get install -y redis-server; scripts/test.sh does it for you): %v", err)
	}
	dir := tb.TempDir()
	for try := 1; ; try++ {
		s := &Server{tb: tb, dir: dir, port: pickPort(tb), extra: extra()}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr + "/0"
		s.logPath = filepath.Join(s.dir, "redis.log")
		err := s.launch()
		if err == nil {
			tb.Cleanup(func() { s.kill(); s.release() })
			return s
		}
		if try == portTries {
			tb.Fatalf("starting redis-server: %v (%d ports tried)", err, try)
		}
		tb.Logf("starting redis-server: %v; trying another port", err)
	}
}

// errPortTaken is a redis-server that could not listen: one of its ports
// was taken by another process.
var errPortTaken = errors.New("port taken by another process")

// launch starts redis-server and waits until it is ready, which it says in
// its log once it listens: from then on, no other process can answer on
// its port (redis-server binds without SO_REUSEPORT), so a PING cannot
// reach another test's server that took the port first.
func (s *Server) launch() error {
	s.tb.Helper()
	logStart := int64(0)
	if st, err := os.Stat(s.logPath); err == nil {
		logStart = st.Size() // a restart appends to the log
	}
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
	if err := waitReady(s.tb, "redis-server on "+s.Addr, s.logPath, readyServer, logStart, s.exited); err != nil {
		s.cmd = nil
		return err
	}
	c := s.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil && !strings.Contains(err.Error(), "NOAUTH") {
		// An auth error is an answer too: tests that set ACLs log in themselves.
		s.tb.Fatalf("redis-server on %s said it was ready, but PING got %v:\n%s", s.Addr, err, logSince(s.logPath, logStart))
	}
	return nil
}

// Lines a server logs once it listens: a redis-server, a sentinel.
const (
	readyServer   = "Ready to accept connections"
	readySentinel = "Sentinel ID is"
)

// waitReady waits until the log at path says ready (past offset), or the
// server exits (done closed): errPortTaken when its port was taken,
// tb.Fatal for anything else.
func waitReady(tb testing.TB, what, path, ready string, offset int64, done <-chan struct{}) error {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := logSince(path, offset)
		select {
		case <-done:
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%s: %w:\n%s", what, errPortTaken, log)
			}
			tb.Fatalf("%s exited at start:\n%s", what, log)
		default:
		}
		if strings.Contains(log, ready) {
			return nil
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s was not ready within 10s:\n%s", what, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logSince is the log at path from offset on.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b[min(offset, int64(len(b))):])
}

// Client returns a new go-redis client for the server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
}

// Stop kills the server (SIGKILL: no final save) and waits for it to exit.
// Its port stays reserved for it until Restart or the end of the test:
// connections are refused, as nothing listens there, but no other process
// is given the port meanwhile (another test's server would answer in its
// place after the restart, or take the port so that it cannot restart).
func (s *Server) Stop() {
	s.kill()
	s.reserve()
}

func (s *Server) kill() {
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

// reserve binds the server's port without listening. With SO_REUSEADDR on
// both sides, redis-server can still bind and listen there (so a restart
// needs no moment without either), and connections made before it listens
// are refused; the kernel skips the port when it picks one for a bind to
// port 0 or a connect. A failure leaves the port unreserved, as before.
func (s *Server) reserve() {
	if s.reserved != 0 {
		return
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) != nil ||
		syscall.Bind(fd, &syscall.SockaddrInet4{Port: s.port, Addr: [4]byte{127, 0, 0, 1}}) != nil {
		_ = syscall.Close(fd)
		return
	}
	s.reserved = fd
}

// release gives up the reservation of the port, if any.
func (s *Server) release() {
	if s.reserved != 0 {
		_ = syscall.Close(s.reserved)
		s.reserved = 0
	}
}

// StopAndHold stops the server and keeps its port for the rest of the
// test, refusing every connection: another test's server started on the
// freed port would otherwise answer in its place.
func (s *Server) StopAndHold() {
	s.tb.Helper()
	s.kill()
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
	err := s.launch()
	s.release()
	if err != nil {
		s.tb.Fatalf("restarting redis-server on the port its clients know: %v", err)
	}
}

// pickPort picks a server's port; a test of this package replaces it.
var pickPort = freePort

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
