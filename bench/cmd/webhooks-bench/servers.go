package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// payloadSize is the size of every event body (the 1 KB payload)
// unless a scenario asks for another.
const payloadSize = 1024

// eventBody builds a 1 KB push payload whose first field is the time the
// app produced it (ns since the epoch), so a receiver can measure latency
// from the app's response to the first delivery attempt.
func eventBody(ts int64, ref string) []byte { return sizedBody(ts, ref, payloadSize) }

// sizedBody is eventBody padded to size bytes.
func sizedBody(ts int64, ref string, size int) []byte {
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"ts":`)
	b.WriteString(strconv.FormatInt(ts, 10))
	b.WriteString(`,"object_kind":"push","event_name":"push","ref":"`)
	b.WriteString(ref)
	b.WriteString(`","checkout_sha":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","user_name":"bench",` +
		`"project":{"path_with_namespace":"acme/app","default_branch":"main"},"pad":"`)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// bodyTS reads the "ts" eventBody put first; 0 if absent.
func bodyTS(b []byte) int64 {
	rest, ok := bytes.CutPrefix(b, []byte(`{"ts":`))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(rest, ','); i > 0 {
		n, _ := strconv.ParseInt(string(rest[:i]), 10, 64)
		return n
	}
	return 0
}

// serve runs h on a fresh loopback port until the returned stop is called.
func serve(h http.Handler) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	}, nil
}

// upstream is the app behind Caddy. /plain is a 1 KB JSON answer that is no
// event; /event the same size announcing a push (signal headers set);
// /event?ref=x changes the pushed ref, /event?size=n the payload's size
// (at most 1 MiB).
func upstream() http.Handler {
	plain := eventBody(0, "refs/heads/main")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if r.URL.Path != "/event" {
			h.Set("Content-Length", strconv.Itoa(len(plain)))
			_, _ = w.Write(plain)
			return
		}
		ref := "refs/heads/main"
		if q := r.URL.Query().Get("ref"); q != "" {
			ref = q
		}
		size := payloadSize
		if n, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil && n > 0 && n <= 1<<20 {
			size = n
		}
		body := sizedBody(time.Now().UnixNano(), ref, size)
		h.Set("X-Webhook-Event", "push")
		h.Set("X-Webhook-Project", "acme/app")
		h.Set("X-Webhook-Ref", ref)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
}

// receiver stands for the hooks' endpoints: /h/<n> answers 204 at once and
// counts; /slow hangs until the sender gives up (its timeout) or release.
type receiver struct {
	count     atomic.Int64 // fast deliveries
	slow      atomic.Int64
	firstNano atomic.Int64
	lastNano  atomic.Int64

	mu      sync.Mutex
	lat     []time.Duration // app response → arrival, when recording
	record  atomic.Bool
	release chan struct{}
}

func newReceiver() *receiver { return &receiver{release: make(chan struct{})} }

func (rc *receiver) reset() {
	rc.count.Store(0)
	rc.slow.Store(0)
	rc.firstNano.Store(0)
	rc.lastNano.Store(0)
	rc.mu.Lock()
	rc.lat = rc.lat[:0]
	rc.release = make(chan struct{})
	rc.mu.Unlock()
}

// unblock lets hanging /slow requests return.
func (rc *receiver) unblock() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	select {
	case <-rc.release:
	default:
		close(rc.release)
	}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/slow") {
		rc.mu.Lock()
		rel := rc.release
		rc.mu.Unlock()
		rc.slow.Add(1)
		select { // bounded even if nobody lets go
		case <-r.Context().Done():
		case <-rel:
		case <-time.After(time.Minute):
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	now := time.Now().UnixNano()
	if rc.record.Load() {
		if ts := bodyTS(body); ts > 0 {
			rc.mu.Lock()
			rc.lat = append(rc.lat, time.Duration(now-ts))
			rc.mu.Unlock()
		}
	}
	rc.firstNano.CompareAndSwap(0, now)
	rc.lastNano.Store(now)
	rc.count.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// rate is deliveries per second between the first and the last arrival.
func (rc *receiver) rate() float64 {
	n, first, last := rc.count.Load(), rc.firstNano.Load(), rc.lastNano.Load()
	if n < 2 || last <= first {
		return 0
	}
	return float64(n-1) / (float64(last-first) / 1e9)
}

func (rc *receiver) latencies() []time.Duration {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]time.Duration(nil), rc.lat...)
}
