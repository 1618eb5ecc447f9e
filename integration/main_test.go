package integration

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// fixedPorts are where the tests' Caddy listens (testGlobals, caddyBase,
// adminBase).
var fixedPorts = []string{"localhost:2999", ":9080", ":9443"}

// portsWait bounds how long a run waits for another run to free them.
const portsWait = 10 * time.Minute

// portsLock is the locked file; referenced here so that it stays open (a
// collected *os.File closes, which would drop the lock).
var portsLock *os.File

// TestMain makes this process the only user of the fixed ports before any
// test runs. Two test processes must never share them, and nothing else
// stops them: Caddy binds with SO_REUSEPORT, so a second process's Caddy
// starts without an error and the kernel spreads connections over both,
// admin /load requests included; and caddytest loads its configs into any
// Caddy that answers on the admin port. Either way one run's config
// replaces another's in the middle of a test: its runtime stops, and a
// delivery under way is cut off and never retried, as its Redis has no
// runtime left.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() { // caddytest skips every test under -short
		if err := holdPorts(portsWait); err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// holdPorts takes the lock of the integration runs on this machine (held
// until the process exits), then waits until no other process listens on
// the fixed ports (a run of an older harness, a demo). It waits at most
// wait in all.
func holdPorts(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	path := filepath.Join(os.TempDir(), "caddy-webhooks-integration.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening the lock of integration runs: %w", err)
	}
	portsLock = f
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("another integration run held %s for %s", path, wait)
		}
		if !said {
			fmt.Fprintf(os.Stderr, "integration: another run holds %s; waiting up to %s\n", path, wait)
			said = true
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, addr := range fixedPorts {
		for said = false; ; {
			ln, err := net.Listen("tcp", addr) // no SO_REUSEPORT: fails while anyone listens
			if err == nil {
				ln.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s stayed in use for %s: %w", addr, wait, err)
			}
			if !said {
				fmt.Fprintf(os.Stderr, "integration: %s is in use by another process; waiting up to %s\n", addr, wait)
				said = true
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}
