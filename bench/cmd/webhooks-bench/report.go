package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// row is one line of the results table.
type row struct {
	scenario, metric string
	base, cand       float64 // NaN: no such figure
	target           string
	pass             string // "pass", "MISS" or "" (no target)
	zeroOK           bool   // 0 is a real result (a smoke run accepts it)
}

func (r row) ratio() float64 {
	if math.IsNaN(r.base) || math.IsNaN(r.cand) || r.base == 0 {
		return math.NaN()
	}
	return r.cand / r.base
}

// add records a row; check (nil: none) decides pass or miss.
func (b *bench) add(scenario, metric string, base, cand float64, target string, check func(r row) bool) {
	r := row{scenario: scenario, metric: metric, base: base, cand: cand, target: target}
	if check != nil {
		r.pass = "MISS"
		if check(r) {
			r.pass = "pass"
		}
	}
	b.rows = append(b.rows, r)
	logf("%s | %s | base %s | cand %s | ratio %s | %s %s", scenario, metric, num(base), num(cand), num(r.ratio()), target, r.pass)
}

// addZeroOK is add for a figure that may truly be 0 (a cluster node that
// holds no key of the load).
func (b *bench) addZeroOK(scenario, metric string, base, cand float64, target string, check func(r row) bool) {
	b.add(scenario, metric, base, cand, target, check)
	b.rows[len(b.rows)-1].zeroOK = true
}

func (b *bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
	logf("note: "+format, args...)
}

func ratioAtLeast(x float64) func(row) bool {
	return func(r row) bool { return r.ratio() >= x }
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "—"
	case x >= 1000:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.3g", x)
	}
}

// report is the results table in Markdown, with the machine and notes.
func (b *bench) report() string {
	var s strings.Builder
	fmt.Fprintf(&s, "\nMachine: %s\n", machine())
	fmt.Fprintf(&s, "Run: %s, rounds %d × %s, %d connections, %d workers, load average at the end: %s\n\n",
		time.Now().UTC().Format(time.RFC3339), b.o.rounds, b.o.dur, b.o.conns, b.o.workers, loadAvg())
	s.WriteString("| # | Metric | Baseline | Candidate | Ratio | Target | Result |\n|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s | %s | %s |\n", r.scenario, r.metric, num(r.base), num(r.cand), num(r.ratio()), r.target, r.pass)
	}
	if len(b.notes) > 0 {
		s.WriteString("\nNotes:\n")
		for _, n := range b.notes {
			fmt.Fprintf(&s, "- %s\n", n)
		}
	}
	return s.String()
}

// checkSmoke fails a smoke run that measured nothing or saw errors. It
// never checks targets: timing on a shared CI box is not a test.
func (b *bench) checkSmoke() error {
	if len(b.rows) == 0 {
		return fmt.Errorf("smoke: no results")
	}
	for _, r := range b.rows {
		if math.IsNaN(r.cand) || (r.cand <= 0 && !r.zeroOK) || (!math.IsNaN(r.base) && r.base <= 0) {
			return fmt.Errorf("smoke: %s %q produced no number", r.scenario, r.metric)
		}
	}
	if b.errs > 0 {
		msg := fmt.Sprintf("smoke: %d failed requests or missing deliveries (the notes above name the missing ones)", b.errs)
		if f := failures.String(); f != "" {
			msg += "; " + f
		}
		return errors.New(msg)
	}
	fmt.Println("bench smoke: OK")
	return nil
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %f kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	redis, _ := exec.Command("redis-server", "--version").Output()
	rv := "?"
	for _, f := range strings.Fields(string(redis)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			rv = v
		}
	}
	return fmt.Sprintf("%d × %s, %s RAM, Linux %s, %s, Redis %s", runtime.NumCPU(), model, mem,
		strings.TrimSpace(string(kernel)), runtime.Version(), rv)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func download(url, path string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func splitLines(s string) []string { return strings.Split(strings.ReplaceAll(s, "\r", ""), "\n") }

func cutPrefix(s, p string) (string, bool) { return strings.CutPrefix(s, p) }
