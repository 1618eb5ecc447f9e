package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what one load run measured.
type loadResult struct {
	n, errs int64
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r loadResult) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// pct returns the p-th percentile (0..100) of sorted latencies.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true,
		IdleConnTimeout: time.Minute,
	}}
}

// do sends one request and reads the whole answer; anything but a 2xx is
// an error that says what came back (status and the start of the body) and
// from where.
func do(c *http.Client, method, url string, body []byte) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err // *url.Error: names the method and the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	got, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Errorf("%s %s: %s: %q", method, url, resp.Status, got)
}

// failures keeps the first failed requests of a run, so that a count of
// errors comes with what they were.
var failures failureLog

type failureLog struct {
	mu    sync.Mutex
	first []string
	n     int
}

const failuresKept = 5

func (f *failureLog) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < failuresKept {
		f.first = append(f.first, err.Error())
	}
}

// String lists the failures kept, one per line, and how many there were.
func (f *failureLog) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return ""
	}
	return fmt.Sprintf("%d failed requests, the first:\n  %s", f.n, strings.Join(f.first, "\n  "))
}

// closedLoop keeps conns requests in flight for d (throughput runs).
func closedLoop(c *http.Client, method, url string, conns int, d time.Duration) loadResult {
	var wg sync.WaitGroup
	var n, errs atomic.Int64
	lats := make([][]time.Duration, conns)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := do(c, method, url, nil); err != nil {
					failures.add(err)
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t))
				n.Add(1)
			}
		}(w)
	}
	wg.Wait()
	r := loadResult{n: n.Load(), errs: errs.Load(), elapsed: time.Since(start)}
	r.lat = slices.Concat(lats...)
	slices.Sort(r.lat)
	return r
}

// openLoop sends rate requests per second for d, each timed from when it
// was due (not when it went out), so a stall is not hidden by waiting.
func openLoop(c *http.Client, method, url string, body func() []byte, rate int, d time.Duration) loadResult {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 512) // bound on requests in flight
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs atomic.Int64
	lat := make([]time.Duration, 0, total)
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var bd []byte
			if body != nil {
				bd = body()
			}
			err := do(c, method, url, bd)
			el := time.Since(due)
			if err != nil {
				failures.add(err)
				errs.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, el)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return loadResult{n: int64(len(lat)), errs: errs.Load(), elapsed: time.Since(start), lat: lat}
}

// postN POSTs body n times over conns connections: the delivery baseline,
// a program that sends the same bodies straight to the receiver.
func postN(c *http.Client, urls []string, body []byte, n, conns int) (time.Duration, int64) {
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := do(c, http.MethodPost, urls[int(i)%len(urls)], body); err != nil {
					failures.add(err)
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), errs.Load()
}
