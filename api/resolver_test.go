package api

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
)

// testHosts is the DNS of the api tests, so that no test looks a name up
// off this machine: names under .internal.test resolve to a private
// address, under .loop.test to loopback, under .nx.test to nothing; any
// other name to a public address.
func testHosts(_ context.Context, host string) ([]netip.Addr, error) {
	switch {
	case strings.HasSuffix(host, ".internal.test"):
		return []netip.Addr{netip.MustParseAddr("10.20.30.40")}, nil
	case strings.HasSuffix(host, ".loop.test"):
		return []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("127.0.0.1")}, nil
	case strings.HasSuffix(host, ".nx.test"):
		return nil, errors.New("no such host")
	}
	return []netip.Addr{netip.MustParseAddr("8.8.8.8")}, nil
}

// publicOnly is the default policy (public addresses only) over testHosts.
var publicOnly = delivery.NetworkPolicy{Resolve: testHosts}
