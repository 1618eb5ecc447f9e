package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// freePort asks the kernel for a port free now; redis-server binds it
// later (it cannot take a listener), so startRedisNamed checks that the
// server it started is the one listening there.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redisProc is a private redis-server: own port, own data dir, no
// persistence unless asked (the capture's "durable" means "in Redis").
type redisProc struct {
	cmd  *exec.Cmd
	port int
	rdb  *redis.Client
}

func startRedis(dir string, aof bool) (*redisProc, error) {
	return startRedisNamed(dir, "redis", aof)
}

// errPortTaken is a redis-server that could not listen: its port (or, in
// cluster mode, its bus port) was taken after it was picked.
var errPortTaken = errors.New("port taken")

// startRedisNamed starts a redis-server with its data and log under
// dir/name, with extra arguments (cluster mode), on a free port: another
// one when the port was taken before the server bound it.
func startRedisNamed(dir, name string, aof bool, extra ...string) (*redisProc, error) {
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("finding a port for redis-server: %w", err)
		}
		p, err := launchRedis(dir, name, port, aof, extra)
		if err == nil || !errors.Is(err, errPortTaken) || try == 5 {
			return p, err
		}
		logf("%v; trying another port", err)
	}
}

// launchRedis starts redis-server on port and waits until it says it is
// ready: then it is the process listening there, as redis-server does not
// share its ports (no SO_REUSEPORT), and a PING cannot reach another one.
func launchRedis(dir, name string, port int, aof bool, extra []string) (*redisProc, error) {
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	appendonly := "no"
	if aof {
		appendonly = "yes"
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", data,
		"--save", "", "--appendonly", appendonly, "--appendfsync", "everysec", "--daemonize", "no"}, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server (apt-get install redis-server): %w", err)
	}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case <-exited:
			tail := logTail(logPath, 600)
			if strings.Contains(tail, "Address already in use") {
				return nil, fmt.Errorf("redis-server %s on %s: %w: %s", name, addr, errPortTaken, tail)
			}
			return nil, fmt.Errorf("redis-server %s on %s exited at start (%s): %s", name, addr, logPath, tail)
		default:
		}
		if strings.Contains(logTail(logPath, 4096), "Ready to accept connections") {
			break
		}
		if time.Now().After(deadline) {
			stopProcess(cmd, 5*time.Second)
			return nil, fmt.Errorf("redis-server %s on %s was not ready within 10s (%s): %s", name, addr, logPath, logTail(logPath, 600))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := &redisProc{cmd: cmd, port: port, rdb: redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})}
	if err := p.rdb.Ping(context.Background()).Err(); err != nil {
		p.stop()
		return nil, fmt.Errorf("redis-server %s on %s said it was ready, but PING failed: %w", name, addr, err)
	}
	return p, nil
}

func (p *redisProc) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", p.port) }

func (p *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// infoInt reads one integer field of INFO section.
func (p *redisProc) infoInt(ctx context.Context, section, field string) (int64, error) {
	info, err := p.rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, err
	}
	for _, l := range splitLines(info) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO %s has no %s", section, field)
}

func (p *redisProc) stop() {
	_ = p.rdb.Close()
	stopProcess(p.cmd, 5*time.Second)
}

// reset empties Redis and zeroes its counters between runs.
func (p *redisProc) reset(ctx context.Context) error {
	if err := p.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	return p.rdb.ConfigResetStat(ctx).Err()
}

// redisStats is a snapshot of the counters round trips are derived from.
type redisStats struct {
	calls  map[string]int64 // INFO commandstats, commands run inside scripts included
	usec   map[string]int64 // their total time, µs (a script's includes its commands')
	writes int64            // total_writes_processed: reply writes ≈ round trips
	reads  int64            // total_reads_processed: socket reads of requests
	cpu    float64          // used_cpu_user + used_cpu_sys, seconds: Redis's own CPU time
}

func (p *redisProc) stats(ctx context.Context) (redisStats, error) {
	st := redisStats{calls: map[string]int64{}, usec: map[string]int64{}}
	info, err := p.rdb.Info(ctx, "commandstats", "stats", "cpu").Result()
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, rest, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(name, "cmdstat_") {
			for _, kv := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(kv, "calls="); ok {
					st.calls[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseInt(v, 10, 64)
				}
				if v, ok := strings.CutPrefix(kv, "usec="); ok {
					st.usec[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseInt(v, 10, 64)
				}
			}
		}
		if v, ok := strings.CutPrefix(line, "total_writes_processed:"); ok {
			st.writes, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "total_reads_processed:"); ok {
			st.reads, _ = strconv.ParseInt(v, 10, 64)
		}
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				st.cpu += f
			}
		}
	}
	return st, sc.Err()
}

// delta is b - a, without the harness's own INFO/CONFIG/XLEN calls.
func (b redisStats) delta(a redisStats) redisStats {
	d := redisStats{calls: map[string]int64{}, usec: map[string]int64{}, writes: b.writes - a.writes,
		reads: b.reads - a.reads, cpu: b.cpu - a.cpu}
	for k, v := range b.calls {
		switch {
		case k == "info", k == "xlen", k == "xinfo|groups", strings.HasPrefix(k, "config|"), k == "ping",
			k == "scan", k == "memory|usage", k == "pttl":
			continue
		}
		if n := v - a.calls[k]; n > 0 {
			d.calls[k] = n
			d.usec[k] = b.usec[k] - a.usec[k]
		}
	}
	return d
}

func (d redisStats) total() int64 {
	var n int64
	for _, v := range d.calls {
		n += v
	}
	return n
}

// caddyProc is a Caddy built from cmd/caddy, run with a generated Caddyfile.
type caddyProc struct {
	cmd   *exec.Cmd
	admin string // host:port of the admin API
}

// startCaddy runs Caddy with caddyfile, serving on the listeners ls (see
// caddyConf), and waits until probe answers.
func startCaddy(bin, dir, name, caddyfile string, ls caddyListeners, probe string) (*caddyProc, error) {
	path := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".caddy.log"))
	if err != nil {
		return nil, err
	}
	files, err := ls.files()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	// Caddy's autosave, storage and instance ID stay in the work dir.
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"), "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = files
	err = cmd.Start()
	closeFiles(files) // Caddy has its own copies
	if err != nil {
		return nil, err
	}
	c := &caddyProc{cmd: cmd, admin: ls.adminAddr()}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	// Ready is the site answering and the webhooks app started: Caddy
	// starts its apps in no set order, so the site may answer while the
	// admin API still says "the webhooks app is not running". The listeners
	// take connections before Caddy serves them: each request waits in the
	// backlog until Caddy answers it, or gives up after a second.
	client := &http.Client{Timeout: time.Second}
	stats := "http://" + c.admin + "/webhooks/stats"
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return nil, fmt.Errorf("caddy exited at start (%s): %s", logf.Name(), logTail(logf.Name(), 600))
		default:
		}
		resp, err := client.Get(probe)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if last = do(client, http.MethodGet, stats, nil); last == nil {
			return c, nil
		}
	}
	stopProcess(cmd, 5*time.Second)
	return nil, fmt.Errorf("caddy was not ready within 30s (%s, then GET %s): %v; see %s: %s", probe, stats, last,
		logf.Name(), logTail(logf.Name(), 600))
}

// logTail is the last n bytes of a log file, for an error message.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (c *caddyProc) pid() int { return c.cmd.Process.Pid }

func (c *caddyProc) stop() { stopProcess(c.cmd, 10*time.Second) }

// stopProcess sends SIGTERM, then SIGKILL after grace.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// rssMB reads VmRSS of pid from /proc, in MiB.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuSeconds reads the user and system CPU time pid used so far, in
// seconds (/proc/<pid>/stat, clock ticks of 1/100 s).
func cpuSeconds(pid int) (float64, error) {
	// Each thread's time on the CPU in nanoseconds (schedstat), where the
	// kernel keeps it: /proc/<pid>/stat counts in ticks of 10 ms, too coarse
	// for an idle process measured over seconds.
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		var ns float64
		read := 0
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue // the thread ended
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				ns += v
				read++
			}
		}
		if read > 0 {
			return ns / 1e9, nil
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, errors.New("unexpected /proc stat")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}
