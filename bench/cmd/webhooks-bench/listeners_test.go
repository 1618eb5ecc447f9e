//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

// soReusePort is SO_REUSEPORT on Linux, which package syscall lacks.
const soReusePort = 0xf

// Another Caddy on this machine binds with SO_REUSEPORT; while the bench
// runs, it must not be able to share any of the bench Caddy's ports, or
// the kernel would hand it some of the bench's requests (admin calls
// included). The bench holds its listeners for the whole run, between the
// Caddy processes too.
func TestCaddyPortsAreNotSharedWithAnotherCaddy(t *testing.T) {
	ls, err := listenCaddy()
	if err != nil {
		t.Fatal(err)
	}
	defer ls.close()
	admin, base, cand := ls.ports()
	reuse := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
		})
		return errors.Join(err, serr)
	}}
	for _, port := range []int{admin, base, cand} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := reuse.Listen(context.Background(), "tcp", addr)
		if err == nil {
			l.Close()
			t.Errorf("another process listened on %s with SO_REUSEPORT while the bench held it", addr)
		} else if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("listening on %s with SO_REUSEPORT: %v, want address already in use", addr, err)
		}
	}
}
