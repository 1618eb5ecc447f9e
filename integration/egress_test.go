package integration

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/grt-continuation/caddy-webhooks/internal/proxytest"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/internal/tlstest"
)

// mtlsReceiver requires a client certificate signed by clients; its own
// certificate, for receiver.example, is signed by a private CA.
type mtlsReceiver struct {
	*httptest.Server
	seen chan string // "<client CN> <path>"
	ca   *tlstest.CA
}

func newMTLSReceiver(t *testing.T, clients *tlstest.CA) *mtlsReceiver {
	r := &mtlsReceiver{seen: make(chan string, 16), ca: tlstest.NewCA(t, "receivers' private CA")}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.seen <- req.TLS.PeerCertificates[0].Subject.CommonName + " " + req.URL.Path
	}))
	r.TLS = &tls.Config{Certificates: []tls.Certificate{r.ca.Server(t, "receiver.example").TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.Pool()}
	r.StartTLS()
	t.Cleanup(r.Close)
	return r
}

func (r *mtlsReceiver) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-r.seen:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15s")
		return ""
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Deliveries leave through the operator's forward proxy (egress_proxy,
// with credentials) to a receiver that requires a client certificate and
// has a private CA, both from a Caddyfile hook's files; a hook with
// egress_proxy off goes straight; a hook added through the API brings its
// own SOCKS5 proxy and TLS material, kept sealed in Redis and never shown
// back. The proxies record what they forwarded: the receiver by name.
func TestEgressProxyAndClientCertificates(t *testing.T) {
	clients := tlstest.NewCA(t, "clients")
	recv := newMTLSReceiver(t, clients)
	_, recvPort, _ := net.SplitHostPort(recv.Listener.Addr().String())
	target := "receiver.example:" + recvPort
	hosts := map[string]string{target: recv.Listener.Addr().String()}
	proxy := proxytest.NewHTTP(t, proxytest.Options{Hosts: hosts, User: "egress", Password: "proxy-PLAINTEXT-pw"})
	socks := proxytest.NewSOCKS5(t, proxytest.Options{Hosts: hosts, User: "s", Password: "socks-PLAINTEXT-pw"})
	plain := newAPIReceiver(t)

	dir := t.TempDir()
	cfgCert := clients.Client(t, "caddyfile-hook")
	certFile, keyFile := writeFile(t, dir, "client.pem", cfgCert.CertPEM), writeFile(t, dir, "client-key.pem", cfgCert.KeyPEM)
	caFile := writeFile(t, dir, "ca.pem", recv.ca.PEM)
	t.Setenv("WEBHOOKS_TEST_EGRESS_PROXY", "http://egress:proxy-PLAINTEXT-pw@"+proxy.Addr)
	t.Setenv("WEBHOOKS_TEST_ADMIN_TOKEN", apiAdminToken)
	t.Setenv("WEBHOOKS_TEST_ENCRYPTION_KEY", newEncryptionKey(t))
	f := &apiFixture{redis: redistest.Start(t)}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Webhook-Event", "push")
		w.Header().Set("X-Webhook-Project", "acme/api")
		w.Header().Set("X-Webhook-Ref", "refs/heads/main")
		fmt.Fprint(w, `{"object_kind":"push","ref":"refs/heads/main"}`)
	}))
	t.Cleanup(upstream.Close)
	f.tester = caddytest.NewTester(t)
	f.tester.InitServer(testCaddyfile(`{
	webhooks {
		redis %s
		namespace egress
		allow_local_requests
		encryption_key {env.WEBHOOKS_TEST_ENCRYPTION_KEY}
		egress_proxy {env.WEBHOOKS_TEST_EGRESS_PROXY}
		timeout 3s
		lease 6s
		hook mtls {
			url https://%s/config
			project acme/api
			client_cert %s
			client_key %s
			ca %s
		}
		hook direct {
			url %s/direct
			project acme/api
			egress_proxy off
		}
	}
}

localhost:9080 {
	handle_path /api/v4/* {
		webhooks_api {
			token admin {env.WEBHOOKS_TEST_ADMIN_TOKEN}
		}
	}
	handle /app/* {
		webhooks_capture
		reverse_proxy %s
	}
}
`, f.redis.URL, target, certFile, keyFile, caFile, plain.URL, upstream.Listener.Addr()), "caddyfile")

	f.event(t, "refs/heads/main")
	if got := recv.next(t); got != "caddyfile-hook /config" {
		t.Errorf("mTLS receiver saw %q, want the Caddyfile hook's client certificate", got)
	}
	plain.byPath(t, 1, "/direct")
	fw := proxy.Forwards()
	if len(fw) != 1 || fw[0].Method != http.MethodConnect || fw[0].Target != target || fw[0].User != "egress" {
		t.Errorf("the proxy forwarded %+v, want one tunnel to %s (by name) for user egress", fw, target)
	}

	// Through the API: its own SOCKS5 proxy and client certificate.
	apiCert := clients.Client(t, "api-hook")
	body, _ := json.Marshal(map[string]any{"url": "https://" + target + "/api", "push_events": true,
		"egress_proxy": "socks5://s:socks-PLAINTEXT-pw@" + socks.Addr,
		"client_cert":  apiCert.CertPEM, "client_key": apiCert.KeyPEM, "ca": recv.ca.PEM})
	id, out := f.createHook(t, string(body))
	var h map[string]any
	_ = json.Unmarshal([]byte(out), &h)
	if h["egress_proxy"] != "socks5://*****:*****@"+socks.Addr || h["client_key_present"] != true ||
		h["client_cert"] != apiCert.CertPEM || h["ca"] != recv.ca.PEM {
		t.Errorf("created hook shows egress_proxy %v, client_key_present %v, client_cert %.30v, ca %.30v",
			h["egress_proxy"], h["client_key_present"], h["client_cert"], h["ca"])
	}
	keyBody := strings.Split(apiCert.KeyPEM, "\n")[1]
	for _, path := range []string{fmt.Sprintf("/api/v4/projects/acme%%2Fapi/hooks/%d", id), "/api/v4/projects/acme%2Fapi/hooks"} {
		st, out, _ := f.raw(t, "GET", path, apiAdminToken, "", nil)
		if st != http.StatusOK || strings.Contains(out, "PLAINTEXT") || strings.Contains(out, keyBody) || strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("GET %s = %d, shows a secret: %s", path, st, out)
		}
	}
	assertNoPlaintextInRedis(t, f.redis, "socks-PLAINTEXT-pw", keyBody)

	f.event(t, "refs/heads/main")
	got := map[string]bool{recv.next(t): true, recv.next(t): true}
	if !got["api-hook /api"] || !got["caddyfile-hook /config"] {
		t.Errorf("mTLS receiver saw %v, want each hook's own certificate", got)
	}
	plain.byPath(t, 1, "/direct")
	if sf := socks.Forwards(); len(sf) != 1 || sf[0].Target != target || sf[0].User != "s" {
		t.Errorf("the SOCKS5 proxy forwarded %+v, want the API hook's delivery to %s", sf, target)
	}

	// Bad extension fields: GitLab's error shape, nothing saved.
	for _, c := range []struct{ body, msg string }{
		{`{"url":"https://r.example/","egress_proxy":"ftp://proxy.example"}`, "Egress proxy must be an http, https or socks5 URL"},
		{`{"url":"https://r.example/","client_cert":` + quote(apiCert.CertPEM) + `}`, "Client certificate, client key and CA must be PEM"},
		{`{"url":"https://r.example/","client_cert":` + quote(apiCert.CertPEM) + `,"client_key":` + quote(cfgCert.KeyPEM) + `}`, "Client certificate, client key and CA must be PEM"},
		{`{"url":"https://r.example/","ca":"not a certificate"}`, "Client certificate, client key and CA must be PEM"},
	} {
		st, out, _ := f.raw(t, "POST", "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json", []byte(c.body))
		if st != http.StatusUnprocessableEntity || !strings.Contains(out, `{"error":"`+c.msg) || strings.Contains(out, "PRIVATE") {
			t.Errorf("POST %.60s = %d %s, want 422 %q", c.body, st, out, c.msg)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
