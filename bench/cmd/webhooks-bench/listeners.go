package main

import (
	"fmt"
	"net"
	"os"
)

// The descriptors Caddy gets its listeners on (exec.Cmd.ExtraFiles start
// at 3), as its Caddyfile names them: "admin fd/3", "bind fd/4".
const (
	adminFD = 3 + iota
	baseFD
	candFD
)

// caddyListeners are the loopback listeners of Caddy's admin API, the
// baseline site and the candidate site, in that order. The bench listens
// on :0 once and hands them to every Caddy it starts, so no other process
// can take or share these ports meanwhile. A port picked free and bound
// later by Caddy could be: Caddy binds with SO_REUSEPORT, so another Caddy
// on the same port starts without an error and the kernel spreads the
// connections over both (an admin request such as POST /webhooks/pause
// then reaches the other one). A listener without SO_REUSEPORT excludes
// every other binder, reuse or not.
type caddyListeners [3]*net.TCPListener

func listenCaddy() (caddyListeners, error) {
	var ls caddyListeners
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ls.close()
			return caddyListeners{}, fmt.Errorf("listening for caddy on 127.0.0.1:0: %w", err)
		}
		ls[i] = l.(*net.TCPListener)
	}
	return ls, nil
}

// ports are the admin, baseline and candidate ports.
func (ls caddyListeners) ports() (admin, base, cand int) {
	port := func(l *net.TCPListener) int { return l.Addr().(*net.TCPAddr).Port }
	return port(ls[0]), port(ls[1]), port(ls[2])
}

// adminAddr is the admin API's host:port.
func (ls caddyListeners) adminAddr() string { return ls[0].Addr().String() }

// files duplicates the listeners for a child process's ExtraFiles; the
// caller closes them once the child started.
func (ls caddyListeners) files() ([]*os.File, error) {
	fs := make([]*os.File, 0, len(ls))
	for _, l := range ls {
		f, err := l.File()
		if err != nil {
			closeFiles(fs)
			return nil, fmt.Errorf("passing the listener on %s: %w", l.Addr(), err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func (ls caddyListeners) close() {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}
