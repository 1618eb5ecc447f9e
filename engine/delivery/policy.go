package delivery

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// RetryPolicy says when a failed delivery is tried again. GitLab makes one
// attempt; we retry transient failures (5xx, 408, 429, timeouts, connection
// errors) with jittered exponential backoff, honouring Retry-After. A 4xx
// means the hook is misconfigured: no retry, the delivery is dead-lettered
// (and can be redriven once the receiver is fixed).
type RetryPolicy struct {
	// MaxAttempts bounds attempts per delivery (1 = GitLab's behaviour).
	MaxAttempts int
	// Backoff is the wait before the second attempt, doubled per attempt.
	Backoff time.Duration
	// MaxBackoff caps the wait between attempts (and a Retry-After).
	MaxBackoff time.Duration
	// MaxAge is how long a delivery may wait in all (retries, a disabled
	// hook, rate limits) before it is dead-lettered as expired.
	MaxAge time.Duration
	// Schedule, when set, replaces MaxAttempts and Backoff: the waits
	// before each retry, in order, not jittered (so there are
	// len(Schedule)+1 attempts). A Retry-After still counts, up to
	// MaxBackoff.
	Schedule []time.Duration
}

// For is the policy deliveries of hook follow: its own retry schedule,
// when it has one.
func (p *RetryPolicy) For(h *webhook.Hook) *RetryPolicy {
	if h.RetrySchedule == nil {
		return p
	}
	c := *p
	c.Schedule, c.MaxAttempts = h.RetrySchedule, len(h.RetrySchedule)+1
	return &c
}

// Validate checks the policy.
func (p *RetryPolicy) Validate() error {
	if p.Schedule != nil {
		if err := webhook.CheckRetrySchedule(p.Schedule); err != nil {
			return err
		}
		if p.MaxAttempts != len(p.Schedule)+1 {
			return fmt.Errorf("a retry schedule of %d waits makes %d attempts, not %d", len(p.Schedule), len(p.Schedule)+1, p.MaxAttempts)
		}
	}
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("max attempts must be at least 1, got %d", p.MaxAttempts)
	case p.Backoff <= 0 || p.MaxBackoff < p.Backoff:
		return fmt.Errorf("retry backoff (%s) must be positive and at most the max backoff (%s)", p.Backoff, p.MaxBackoff)
	case p.MaxAge <= 0:
		return fmt.Errorf("max delivery age must be positive")
	}
	return nil
}

// backoff is the wait after the given failed attempt (from 1): the
// schedule's, or a jittered exponential one.
func (p *RetryPolicy) backoff(attempt int) time.Duration {
	if p.Schedule != nil {
		return p.Schedule[min(attempt, len(p.Schedule))-1]
	}
	d := p.Backoff << min(attempt-1, 30)
	if d <= 0 || d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	return jitter(d)
}

// jitter spreads d over ±20% so retries of many deliveries do not align.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// outcome classifies an attempt's result into what to record.
func (p *RetryPolicy) outcome(res *Result, d *webhook.Delivery, now time.Time) redisstore.Outcome {
	o := redisstore.Outcome{Attempted: true, Status: res.statusText()}
	if res.Success() {
		o.Success = true
		return o
	}
	switch {
	case res.Err == nil && res.Status == http.StatusGone:
		o.Class, o.Reason = "gone", "410 Gone: the receiver asked to be removed"
		return o
	case res.Err == nil && res.Status >= 400 && res.Status < 500 &&
		res.Status != http.StatusRequestTimeout && res.Status != http.StatusTooEarly && res.Status != http.StatusTooManyRequests:
		o.Class, o.Reason = "client", "client error "+strconv.Itoa(res.Status)+": not retried"
		return o
	}
	due := now.Add(p.backoff(d.Attempt))
	if ra := retryAfter(res, now); ra.After(due) {
		due = ra
		if limit := now.Add(p.MaxBackoff); due.After(limit) {
			due = limit
		}
	}
	if d.Attempt >= p.MaxAttempts || due.Sub(d.At) > p.MaxAge {
		o.Reason = fmt.Sprintf("gave up after %d attempts, last: %s", d.Attempt, o.Status)
		return o
	}
	o.Retry, o.RetryAt = true, due
	return o
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(res *Result, now time.Time) time.Time {
	if res.Header == nil {
		return time.Time{}
	}
	v := strings.TrimSpace(res.Header.Get("Retry-After"))
	if v == "" {
		return time.Time{}
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Time{}
}

// statusText is the attempt's result as GitLab's logs show it: the status
// code, or "internal error".
func (r *Result) statusText() string {
	if r.Err != nil {
		return "internal error"
	}
	return strconv.Itoa(r.Status)
}

// deadReason is a dead letter's reason as a metric label.
func deadReason(o redisstore.Outcome) string {
	switch {
	case o.Class == "gone":
		return "gone"
	case o.Class == "client":
		return "client_error"
	case o.Attempted:
		return "exhausted"
	case strings.HasPrefix(o.Reason, "expired"):
		return "expired"
	case strings.HasPrefix(o.Reason, "poison"):
		return "poison"
	default:
		return "hook_disabled"
	}
}
