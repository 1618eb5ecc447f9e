package proxytest

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
)

// NewSOCKS5 starts a SOCKS5 proxy (RFC 1928; user name and password
// authentication, RFC 1929, when o.User is set) that takes CONNECT only.
func NewSOCKS5(t testing.TB, o Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &Proxy{hosts: lower(o.Hosts), user: o.User, pass: o.Password, Addr: ln.Addr().String()}
	p.URL = "socks5://" + p.Addr
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serveSOCKS(c)
		}
	}()
	return p
}

func (p *Proxy) serveSOCKS(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return
	}
	want := byte(0) // no authentication
	if p.user != "" {
		want = 2 // user name and password
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	f := Forward{Method: "SOCKS"}
	if want == 2 {
		user, pass, ok := readUserPass(r)
		f.User = user
		if !ok || user != p.user || pass != p.pass {
			c.Write([]byte{1, 1})
			f.Refused = true
			p.record(f)
			return
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(r, req[:]); err != nil || req[1] != 1 { // CONNECT
		return
	}
	var host string
	switch req[3] {
	case 1: // IPv4
		var a [4]byte
		io.ReadFull(r, a[:])
		host = net.IP(a[:]).String()
	case 4: // IPv6
		var a [16]byte
		io.ReadFull(r, a[:])
		host = net.IP(a[:]).String()
	case 3: // a name, resolved here
		n, _ := r.ReadByte()
		name := make([]byte, n)
		io.ReadFull(r, name)
		host = string(name)
	default:
		return
	}
	var port [2]byte
	io.ReadFull(r, port[:])
	f.Target = net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	addr, known := p.resolve(f.Target)
	f.Refused = !known
	p.record(f)
	var up net.Conn
	var err error
	if known {
		up, err = net.Dial("tcp", addr)
	}
	if !known || err != nil {
		c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
		return
	}
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	splice(c, r, up)
}

func readUserPass(r *bufio.Reader) (user, pass string, ok bool) {
	ver, err := r.ReadByte()
	if err != nil || ver != 1 {
		return "", "", false
	}
	read := func() string {
		n, _ := r.ReadByte()
		b := make([]byte, n)
		io.ReadFull(r, b)
		return string(b)
	}
	user = read()
	pass = read()
	return user, pass, true
}
