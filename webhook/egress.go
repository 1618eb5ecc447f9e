package webhook

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// EgressOff as a hook's (or the app's) egress proxy sends deliveries
// straight to the receiver, whatever proxy the others or the environment
// name.
const EgressOff = "off"

// MaxTLSPEM bounds each PEM text of a hook's TLS material.
const MaxTLSPEM = 64 << 10

// ParseProxy reads an egress proxy URL: http, https, socks5 or socks5h
// (the proxy resolves the receiver's name either way), a host, an optional
// port (default: 80, 443 or 1080) and optional user info; no path beyond
// "/", no query. The error never shows the user info.
func ParseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("egress proxy %s is not a URL", gitlab.MaskURL(s))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5" && u.Scheme != "socks5h":
		return nil, fmt.Errorf("egress proxy %s: the scheme must be http, https or socks5", gitlab.MaskURL(s))
	case u.Hostname() == "" || u.Opaque != "":
		return nil, fmt.Errorf("egress proxy %s has no host", gitlab.MaskURL(s))
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("egress proxy %s: a proxy URL has no path or query", gitlab.MaskURL(s))
	}
	if u.User != nil && u.User.Username() == "" {
		return nil, fmt.Errorf("egress proxy %s has an empty user name", gitlab.MaskURL(s))
	}
	u.Path = ""
	return u, nil
}

// ClientTLS is a hook's TLS material beyond GitLab's enable_ssl_verification:
// a client certificate for receivers that require one (mutual TLS), and
// the CA certificates of receivers whose certificate a private CA signed
// (they replace the system's roots for the hook). PEM text; Key is a
// secret.
type ClientTLS struct {
	Cert, Key string
	CA        string

	once   sync.Once
	config *tls.Config
	err    error
	sum    string
}

// IsZero reports whether there is no material.
func (c *ClientTLS) IsZero() bool { return c == nil || (c.Cert == "" && c.Key == "" && c.CA == "") }

// Config is the TLS client configuration of the material, parsed once:
// the certificate and key must match, and the CA text must hold
// certificates. The error never shows the key.
func (c *ClientTLS) Config() (*tls.Config, error) {
	c.once.Do(func() {
		c.config, c.err = c.parse()
		sum := sha256.Sum256([]byte(c.Cert + "\x00" + c.Key + "\x00" + c.CA))
		c.sum = hex.EncodeToString(sum[:])
	})
	return c.config, c.err
}

func (c *ClientTLS) parse() (*tls.Config, error) {
	cfg := &tls.Config{}
	for _, p := range []struct{ name, pem string }{{"client certificate", c.Cert}, {"client key", c.Key}, {"CA certificates", c.CA}} {
		if len(p.pem) > MaxTLSPEM {
			return nil, fmt.Errorf("the %s are too long (%d bytes; maximum is %d)", p.name, len(p.pem), MaxTLSPEM)
		}
	}
	switch {
	case (c.Cert == "") != (c.Key == ""):
		return nil, errors.New("a client certificate and its key go together: give both or neither")
	case c.Cert != "":
		pair, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			return nil, errors.New("the client certificate and key are not a matching PEM certificate and private key")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if c.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CA)) || strings.Contains(c.CA, "PRIVATE KEY") {
			return nil, errors.New("the CA certificates are not PEM certificates")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Fingerprint identifies the material (a hash of it), so connections made
// with one client certificate are never reused with another.
func (c *ClientTLS) Fingerprint() string {
	if c.IsZero() {
		return ""
	}
	_, _ = c.Config() // computes the sum once
	return c.sum
}
