package delivery

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Failures without a usable response are GitLab's "internal error", with
// text that says what went wrong and never the URL's secrets.
func TestSendFailuresHaveClearInternalErrors(t *testing.T) {
	refused := fmt.Sprintf("http://127.0.0.1:%d/hook/{secret}", refusingPort(t)) // nobody listens there
	garbage := tcpServer(t, func(c net.Conn) {                                   // answers with something that is not HTTP
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http notices the client leaving only after the body
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer hang.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()

	closes := tcpServer(t, func(net.Conn) {}) // hangs up without answering

	cases := []struct {
		name, url string
		verify    bool
		want      string
	}{
		{"connection refused", refused, true, "connection refused"},
		{"not HTTP", garbage, true, "malformed HTTP"},
		{"closed without an answer", closes, true, "closed the connection without answering"},
		{"timeout", hang.URL + "/{secret}", true, "request timed out"},
		{"untrusted certificate", tlsSrv.URL + "/{secret}", true, "certificate"},
	}
	s := NewSender()
	// Only the hanging receiver waits for the timeout; the others fail on
	// their own, and a short timeout would cut a TLS handshake on a loaded
	// machine ("request timed out" instead of the certificate's error).
	cfg := &SendConfig{UserAgent: "GitLab/18.6.0", Timeout: 10 * time.Second, MaxResponseBody: 1024, Network: NetworkPolicy{AllowLocal: true}}
	short := *cfg
	short.Timeout = 500 * time.Millisecond
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &webhook.Hook{ID: 1, URL: c.url, URLVariables: map[string]string{"secret": "s3cr3t-path"}, EnableSSLVerification: c.verify}
			send := cfg
			if c.url == hang.URL+"/{secret}" {
				send = &short
			}
			res := s.Send(context.Background(), send, &Request{Hook: h, EventID: "ev", Chain: "chain", Trigger: gitlab.Push, Body: []byte(`{}`)})
			if res.Err == nil || res.Outcome() != "internal_error" || res.statusText() != "internal error" {
				t.Fatalf("result %+v, want an internal error", res)
			}
			if msg := res.Err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "s3cr3t-path") {
				t.Fatalf("error %q: want it to say %q and not carry the URL variable's value", msg, c.want)
			}
		})
	}

	// enable_ssl_verification false reaches the same server.
	h := &webhook.Hook{ID: 1, URL: tlsSrv.URL, EnableSSLVerification: false}
	if res := s.Send(context.Background(), cfg, &Request{Hook: h, EventID: "ev", Chain: "chain", Trigger: gitlab.Push, Body: []byte(`{}`)}); !res.Success() {
		t.Fatalf("with verification off: %+v", res)
	}
}

// tcpServer runs handle for each connection on a loopback listener and
// returns a hook URL for it.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			handle(c)
			c.Close()
		}
	}()
	return "http://" + l.Addr().String() + "/hook/{secret}"
}
