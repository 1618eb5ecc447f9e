package main

import (
	"fmt"
	"strings"
)

// hookConf is one hook of a generated Caddyfile.
type hookConf struct {
	id     int
	path   string // on the receiver: /h/<id> (fast) or /slow/<id>
	filter string // branch_filter arguments; empty: all_branches
}

func fastHooks(n int) []hookConf {
	hs := make([]hookConf, n)
	for i := range hs {
		hs[i] = hookConf{id: i + 1, path: fmt.Sprintf("/h/%d", i+1)}
	}
	return hs
}

// caddyConf describes one Caddy: two sites on the same upstream, one
// without webhooks_capture (the baseline) and one with it (the candidate),
// so A/B runs hit the same process, binary and upstream. Caddy serves its
// admin API and both sites on the listeners the bench holds (caddyFDs):
// the ports name the sites and build URLs; nothing binds them anew.
type caddyConf struct {
	admin, basePort, candPort int
	redisURL, upstream        string
	receiver                  string
	hooks                     []hookConf
	extra                     []string // more lines in the webhooks block
}

func (c caddyConf) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin fd/%d\n\tauto_https off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n", adminFD)
	fmt.Fprintf(&b, "\twebhooks {\n\t\tredis %s\n\t\tnamespace bench\n\t\tallow_local_requests\n", c.redisURL)
	for _, l := range c.extra {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	for _, h := range c.hooks {
		filter := h.filter
		if filter == "" {
			filter = "all_branches"
		}
		fmt.Fprintf(&b, "\t\thook h%d {\n\t\t\tid %d\n\t\t\turl http://%s%s\n\t\t\ttoken bench-token\n\t\t\tgroup acme\n\t\t\tevents push\n\t\t\tbranch_filter %s\n\t\t}\n",
			h.id, h.id, c.receiver, h.path, filter)
	}
	b.WriteString("\t}\n}\n\n")
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\tbind fd/%d\n\treverse_proxy %s\n}\n\n", c.basePort, baseFD, c.upstream)
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\tbind fd/%d\n\twebhooks_capture\n\treverse_proxy %s\n}\n", c.candPort, candFD, c.upstream)
	return b.String()
}
