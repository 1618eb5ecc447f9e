package webhook

import (
	"errors"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/tlstest"
)

func TestParseProxy(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"http://proxy.corp:3128", ""},
		{"https://user:p%40ss@proxy.corp", ""},
		{"socks5://10.0.0.5:1080", ""},
		{"socks5h://proxy.corp:1080/", ""},
		{"ftp://proxy.corp", "the scheme must be http, https or socks5"},
		{"socks4://proxy.corp", "the scheme must be http, https or socks5"},
		{"proxy.corp:3128", "the scheme must be"},
		{"http://", "has no host"},
		{"http://u:s3cret@proxy.corp/path", "no path or query"},
		{"http://proxy.corp/?a=b", "no path or query"},
		{"http://:s3cret@proxy.corp", "empty user name"},
	} {
		_, err := ParseProxy(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want %q", c.in, err, c.err)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the error shows the password: %v", c.in, err)
		}
	}
}

// A hook's TLS material is checked when it is saved: a certificate needs
// its key (and the key its certificate), they must match, a CA must hold
// certificates; an error never shows the key.
func TestClientTLSValidation(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	a, b := ca.Client(t, "a"), ca.Client(t, "b")
	hook := func(c *ClientTLS) *Hook {
		return &Hook{ID: 1, Project: "acme/api", URL: "https://r.example/", TLS: c}
	}
	for _, c := range []struct {
		name string
		tls  *ClientTLS
		err  string
	}{
		{"pair and CA", &ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM, CA: ca.PEM}, ""},
		{"CA only", &ClientTLS{CA: ca.PEM}, ""},
		{"certificate alone", &ClientTLS{Cert: a.CertPEM}, "give both or neither"},
		{"key alone", &ClientTLS{Key: a.KeyPEM}, "give both or neither"},
		{"another's key", &ClientTLS{Cert: a.CertPEM, Key: b.KeyPEM}, "not a matching"},
		{"not PEM", &ClientTLS{CA: "-----BEGIN NONSENSE-----"}, "not PEM certificates"},
		{"a key as CA", &ClientTLS{CA: ca.PEM + a.KeyPEM}, "not PEM certificates"},
		{"too long", &ClientTLS{CA: strings.Repeat("x", MaxTLSPEM+1)}, "too long"},
	} {
		err := hook(c.tls).Validate()
		var inv *InvalidError
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (!errors.As(err, &inv) || !inv.Has(BadClientTLS) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		case err != nil && strings.Contains(err.Error(), "PRIVATE KEY"):
			t.Errorf("%s: the error shows the key", c.name)
		}
	}
	x := &ClientTLS{Cert: a.CertPEM, Key: a.KeyPEM}
	if x.Fingerprint() == "" || x.Fingerprint() == (&ClientTLS{Cert: b.CertPEM, Key: b.KeyPEM}).Fingerprint() {
		t.Error("fingerprints do not tell two client certificates apart")
	}
}
