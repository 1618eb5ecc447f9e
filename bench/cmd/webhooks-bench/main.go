// Command webhooks-bench measures caddy-webhooks against baselines taken in
// the same run on the same machine: proxy overhead, capture cost, delivery
// throughput, latency, isolation from a hanging receiver, a large backlog
// and Redis round trips per delivery; and what the data layout costs: CPU
// and round trips per event at a steady rate, Redis memory per queued
// delivery and per event, and the spread of the load over a Redis
// Cluster. Everything runs on loopback: a private redis-server (or
// cluster), the upstream app and the receivers (in this process), and
// Caddy built from ./cmd/caddy. Run it through
// scripts/bench.sh; see BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type options struct {
	smoke         bool
	caddyBin      string
	only          string
	rounds        int
	dur           time.Duration
	conns         int
	workers       int
	backlog       int
	backlogTime   time.Duration
	steadyDur     time.Duration
	memDur        time.Duration
	bigEvents     int
	shards        int
	clusterShards int
	pprofDir      string
	aof           bool
	keep          bool
	replayRate    int
}

func main() {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "every scenario at a tiny size; checks that each produced numbers, not targets")
	flag.StringVar(&o.caddyBin, "caddy", "", "Caddy binary with the plugin (default: go build ./cmd/caddy)")
	flag.StringVar(&o.only, "only", "1,2,3,4,5,6,7,8,9,10,11,12", "scenarios to run (7 comes with 3; 3 is 3a, 3b and 3c; 8 is 8a, 500 events/s, and 8b, 1,000/s)")
	flag.IntVar(&o.rounds, "rounds", 3, "A/B rounds per comparison; medians are reported")
	flag.DurationVar(&o.dur, "dur", 5*time.Second, "length of one throughput round")
	flag.IntVar(&o.conns, "conns", 32, "load generator connections (closed loop)")
	flag.IntVar(&o.workers, "workers", 32, "Caddy webhooks workers, and the delivery baseline's concurrency")
	flag.IntVar(&o.backlog, "backlog", 1_000_000, "deliveries queued for scenario 6")
	flag.DurationVar(&o.backlogTime, "backlog-time", 120*time.Second, "how long scenario 6 may drain")
	flag.DurationVar(&o.steadyDur, "steady-dur", 30*time.Second, "length of one steady run of scenario 8")
	flag.DurationVar(&o.memDur, "mem-dur", 10*time.Minute, "length of scenario 11's steady run")
	flag.IntVar(&o.bigEvents, "big-events", 500, "20 KB events queued per round of scenario 9 (× 20 hooks)")
	flag.IntVar(&o.shards, "shards", 0, "queue shards (the webhooks option shards N) of every scenario but 10; 0: the default")
	flag.IntVar(&o.clusterShards, "cluster-shards", 12, "queue shards of scenario 10 (cluster)")
	flag.StringVar(&o.pprofDir, "pprof", "", "write Caddy CPU profiles of scenarios 2, 2b, 3a, 3b and 8 here")
	flag.BoolVar(&o.aof, "aof", false, "run Redis with appendonly yes, appendfsync everysec")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, Caddyfiles)")
	flag.IntVar(&o.replayRate, "replay-rate", 0, "replay_rate of scenario 12 (0: Caddy's default)")
	flag.Parse()
	if o.smoke {
		o.rounds, o.dur, o.conns = 1, 500*time.Millisecond, 8
		o.backlog, o.backlogTime = 3000, 20*time.Second
		o.bigEvents = 20
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "webhooks-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.caddyBin == "" {
		o.caddyBin = filepath.Join(dir, "caddy")
		fmt.Fprintln(os.Stderr, "building ./cmd/caddy")
		cmd := exec.Command("go", "build", "-o", o.caddyBin, "./cmd/caddy")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building caddy: %w", err)
		}
	}
	b, err := newBench(o, dir)
	if err != nil {
		return err
	}
	defer b.close()

	fmt.Fprintf(os.Stderr, "machine: %s\n", machine())
	want := b.want
	for _, s := range strings.Split(o.only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	steps := []struct {
		ids string
		fn  func() error
	}{
		{"1,2,2b", b.proxy},
		{"3,3a,3b,3c,7", b.delivery},
		{"4", b.latency},
		{"5", b.isolation},
		{"6", b.backlogDrain},
		{"8,8a,8b", b.steadyCPU},
		{"9", b.bigPayload},
		{"10", b.clusterSpread},
		{"11", b.steadyMemory},
		{"12", b.replayPriority},
	}
	for _, s := range steps {
		if !slices.ContainsFunc(strings.Split(s.ids, ","), func(id string) bool { return want[id] }) {
			continue
		}
		if err := s.fn(); err != nil {
			return err
		}
	}
	fmt.Println(b.report())
	if o.smoke {
		return b.checkSmoke()
	}
	return nil
}

// bench holds what every scenario shares.
type bench struct {
	o       options
	dir     string
	rds     *redisProc
	upAddr  string
	rcv     *receiver
	rcvAddr string
	stops   []func()
	caddy   *caddyProc
	lns     caddyListeners
	conf    caddyConf
	rows    []row
	notes   []string
	errs    int64
	want    map[string]bool // the scenarios of -only
}

func newBench(o options, dir string) (*bench, error) {
	b := &bench{o: o, dir: dir, rcv: newReceiver(), want: map[string]bool{}}
	var err error
	if b.rds, err = startRedis(dir, o.aof); err != nil {
		return nil, err
	}
	addr, stop, err := serve(upstream())
	if err != nil {
		b.close()
		return nil, err
	}
	b.upAddr = addr
	b.stops = append(b.stops, stop)
	if addr, stop, err = serve(b.rcv); err != nil {
		b.close()
		return nil, err
	}
	b.rcvAddr = addr
	b.stops = append(b.stops, stop)
	b.conf = caddyConf{redisURL: b.rds.url(), upstream: b.upAddr, receiver: b.rcvAddr}
	if b.lns, err = listenCaddy(); err != nil {
		b.close()
		return nil, err
	}
	b.conf.admin, b.conf.basePort, b.conf.candPort = b.lns.ports()
	return b, nil
}

func (b *bench) close() {
	b.stopCaddy()
	b.rcv.unblock()
	for _, s := range b.stops {
		s()
	}
	b.lns.close()
	if b.rds != nil {
		b.rds.stop()
	}
}

func (b *bench) baseURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", b.conf.basePort, path)
}

func (b *bench) candURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", b.conf.candPort, path)
}

// startCaddy (re)starts Caddy with hooks and extra webhooks settings.
func (b *bench) startCaddy(name string, hooks []hookConf, extra ...string) error {
	return b.startCaddyOn(name, b.conf.redisURL, hooks, extra...)
}

// startCaddyOn is startCaddy with another value of the redis setting (a
// proxy in front of the bench Redis, a cluster).
func (b *bench) startCaddyOn(name, redis string, hooks []hookConf, extra ...string) error {
	b.stopCaddy()
	c := b.conf
	c.redisURL = redis
	c.hooks = hooks
	c.extra = append([]string{fmt.Sprintf("workers %d", b.o.workers)}, extra...)
	if !slices.ContainsFunc(extra, func(l string) bool { return strings.HasPrefix(l, "shards ") }) {
		c.extra = append(c.extra, b.shardsConf()...)
	}
	p, err := startCaddy(b.o.caddyBin, b.dir, name, c.render(), b.lns, b.baseURL("/plain"))
	if err != nil {
		return err
	}
	b.caddy = p
	return nil
}

func (b *bench) stopCaddy() {
	if b.caddy != nil {
		b.rcv.unblock() // hanging receivers let go, so shutdown is quick
		b.caddy.stop()
		b.caddy = nil
	}
}

// profile fetches a CPU profile of Caddy for secs seconds into the pprof
// directory, in the background; wait on the returned channel.
func (b *bench) profile(name string, secs int) <-chan struct{} {
	done := make(chan struct{})
	if b.o.pprofDir == "" || b.caddy == nil {
		close(done)
		return done
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.caddy.admin, secs)
	go func() {
		defer close(done)
		_ = os.MkdirAll(b.o.pprofDir, 0o755)
		out := filepath.Join(b.o.pprofDir, name+".pprof")
		if err := download(url, out, time.Duration(secs+30)*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "profile", name, "failed:", err)
			return
		}
		fmt.Fprintln(os.Stderr, "wrote", out)
	}()
	return done
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func (b *bench) xlen(key string) int64 {
	n, _ := b.rds.rdb.XLen(context.Background(), key).Result()
	return n
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
