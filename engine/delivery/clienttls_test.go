package delivery

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/tlstest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// A receiver that requires a client certificate signed by its CA (mutual
// TLS) gets the hook's; a hook without one, or with another CA's, is
// refused, even right after a hook with one reached the same address (no
// connection is shared between client certificates); the receiver's own
// certificate is checked against the hook's CA.
func TestSendWithClientCertificatesAndPrivateCAs(t *testing.T) {
	clients, receivers, other := tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "receivers"), tlstest.NewCA(t, "other")
	seen := make(chan string, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{receivers.Server(t, "127.0.0.1").TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.Pool()}
	srv.StartTLS()
	defer srv.Close()

	s := NewSender()
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Network: NetworkPolicy{AllowLocal: true}}
	withTLS := func(id int64, verify bool, c *webhook.ClientTLS) *webhook.Hook {
		return &webhook.Hook{ID: id, URL: srv.URL + "/hook", EnableSSLVerification: verify, TLS: c}
	}
	a := clients.Client(t, "hook-a")
	for _, c := range []struct {
		name    string
		hook    *webhook.Hook
		cn      string // "": refused
		problem string
	}{
		{"client certificate and CA", withTLS(1, true, &webhook.ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM, CA: receivers.PEM}), "hook-a", ""},
		// TLS 1.3 finishes the client's handshake before the server checks
		// its certificate: the refusal is the server's alert or its hang-up.
		{"CA only, right after", withTLS(2, true, &webhook.ClientTLS{CA: receivers.PEM}), "", "certificate required|closed the connection"},
		{"another CA's client certificate", withTLS(3, true, &webhook.ClientTLS{Cert: other.Client(t, "x").CertPEM,
			Key: other.Client(t, "x").KeyPEM, CA: receivers.PEM}), "", ""},
		{"system roots", withTLS(4, true, &webhook.ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM}), "", "certificate signed by unknown authority"},
		{"verification off", withTLS(5, false, &webhook.ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM}), "hook-a", ""},
		{"the first again", withTLS(1, true, &webhook.ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM, CA: receivers.PEM}), "hook-a", ""},
	} {
		res := sendHook(s, cfg, c.hook)
		switch {
		case c.cn != "" && !res.Success():
			t.Errorf("%s: %+v", c.name, res)
		case c.cn != "":
			if got := <-seen; got != c.cn {
				t.Errorf("%s: receiver saw client %q, want %q", c.name, got, c.cn)
			}
		case res.Success() || res.Err == nil:
			t.Errorf("%s: delivered (%d), want it refused", c.name, res.Status)
		case c.problem != "" && !containsAny(res.Err.Error(), strings.Split(c.problem, "|")):
			t.Errorf("%s: %v, want it to say %q", c.name, res.Err, c.problem)
		}
	}
	if len(seen) != 0 {
		t.Errorf("%d unexpected requests", len(seen))
	}
}

func sendHook(s *Sender, cfg *SendConfig, h *webhook.Hook) Result {
	return s.Send(context.Background(), cfg, &Request{Hook: h, EventID: "ev", Chain: "ev", Trigger: gitlab.Push, Body: []byte(`{}`), Attempt: 1})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// A receiver that speaks HTTP/2 still gets it: the transport's own TLS
// dialling negotiates h2 as Go's would, with and without a client
// certificate.
func TestSendNegotiatesHTTP2(t *testing.T) {
	clients, receivers := tlstest.NewCA(t, "clients"), tlstest.NewCA(t, "receivers")
	protos := make(chan int, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { protos <- r.ProtoMajor }))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{receivers.Server(t, "127.0.0.1").TLS},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clients.Pool()}
	srv.StartTLS()
	defer srv.Close()
	cert := clients.Client(t, "h2")
	cfg := &SendConfig{Timeout: 5 * time.Second, MaxResponseBody: 1024, Network: NetworkPolicy{AllowLocal: true}}
	for _, c := range []*webhook.ClientTLS{{CA: receivers.PEM}, {Cert: cert.CertPEM, Key: cert.KeyPEM, CA: receivers.PEM}} {
		res := sendHook(NewSender(), cfg, &webhook.Hook{ID: 1, URL: srv.URL, EnableSSLVerification: true, TLS: c})
		if !res.Success() {
			t.Fatalf("%+v", res)
		}
		if p := <-protos; p != 2 {
			t.Errorf("the receiver got HTTP/%d, want HTTP/2", p)
		}
	}
}
