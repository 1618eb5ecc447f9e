package engine

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs the parallel tests six at a time unless -parallel says
// otherwise: they spend their time waiting on receivers, timers and their
// own redis-server, not on the CPU, so GOMAXPROCS (the default) would
// leave the CPU idle.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", "6")
	}
	os.Exit(m.Run())
}
