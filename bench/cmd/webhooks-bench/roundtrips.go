package main

import (
	"net"
	"sync"
	"sync/atomic"
)

// rtProxy is a loopback TCP proxy between Caddy and Redis that counts
// round trips. RESP over one connection is request → reply: a go-redis
// connection sends a command or a whole pipeline and waits for all of its
// replies before it sends again (a blocking XREADGROUP included). So a
// round trip is a burst of client bytes followed by server bytes, and
// counting, per connection, the first server read after client bytes
// counts round trips exactly, however TCP splits the bytes. Redis's own
// counters (total_reads_processed, total_writes_processed) count socket
// reads and writes instead, which a large request or reply splits.
type rtProxy struct {
	l       net.Listener
	target  string
	trips   atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // closed by close; as many as Caddy's pool opens
	closing atomic.Bool
}

func startRTProxy(target string) (*rtProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &rtProxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *rtProxy) addr() string { return p.l.Addr().String() }

func (p *rtProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		// sent is set when client bytes went to the server and cleared by
		// the first server bytes back: one round trip.
		var sent atomic.Bool
		p.wg.Add(2)
		go p.pipe(s, c, func() { sent.Store(true) })
		go p.pipe(c, s, func() {
			if sent.CompareAndSwap(true, false) {
				p.trips.Add(1)
			}
		})
	}
}

func (p *rtProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing.Load() {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, calling seen after each read and before its
// bytes are passed on (so a reply cannot overtake the request's mark).
func (p *rtProxy) pipe(dst, src net.Conn, seen func()) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			seen()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF included: the other side closed
			return
		}
	}
}

func (p *rtProxy) close() {
	p.closing.Store(true)
	_ = p.l.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
