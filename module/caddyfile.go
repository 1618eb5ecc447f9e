package module

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// UnmarshalCaddyfile sets up the app from the webhooks global option:
//
//	webhooks {
//		redis          [cluster|sentinel] <url>
//		namespace      <prefix>
//		instance       <base url>
//		gitlab_version <version>
//		workers        <n>
//		timeout        <duration>
//		lease          <duration>
//		claim_interval <duration>
//		max_response_body <size>
//		max_payload       <size>
//		allow_local_requests
//		allow_networks    <cidr|ip...>
//		spool_dir         <dir>|off
//		spool_max_size    <size>
//		log_retention     <duration>
//		log_max_entries   <n>
//		log_max_request_body <size>
//		redis_ca          <pem file>
//		redis_client_cert <cert file> <key file>
//		replica_acks      <n>
//		shards            <n>
//		max_attempts      <n>
//		retry_backoff     <duration>
//		max_retry_backoff <duration>
//		retry_schedule    <duration...>
//		auto_disable      gitlab|off|permanent_after [<n>]
//		replay_rate       <n>
//		max_delivery_age  <duration>
//		max_dead_letters  <n>
//		max_dead_letter_bytes <size>
//		hook_concurrency  <n>
//		calls_per_minute  <n>
//		disable_after_failures <n>
//		disable_for       <duration>
//		max_disable_for   <duration>
//		silent_mode
//		signing_token_overlap <duration>|off
//		egress_proxy      <http|https|socks5 url>|off
//		encryption_key <base64 32 bytes>
//		alerts { … }   (see AlertsConfig.unmarshalCaddyfile)
//		hook <name> {
//			id               <n>
//			url              <url>
//			token            <secret>
//			project          <full path>
//			group            <full path>
//			events           <trigger...>
//			branch_filter    <wildcard|regex|all_branches> [<filter>]
//			ssl_verification on|off
//			custom_header    <name> <value>
//			url_variable     <name> <value>
//			signing_token    <whsec_…>
//			custom_webhook_template <json>
//			ordered
//			retry_schedule <duration...>
//			auto_disable   gitlab|off|permanent_after [<n>]
//			trace_context    on|off
//			egress_proxy     <http|https|socks5 url>|off
//			client_cert      <pem file>
//			client_key       <pem file>
//			ca               <pem file>
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	var urls []hookURL
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "redis":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] != "cluster" && args[0] != "sentinel":
				a.Redis = args[0]
			case len(args) == 2 && (args[0] == "cluster" || args[0] == "sentinel"):
				a.RedisMode, a.Redis = args[0], args[1]
			default:
				return d.Err("usage: redis [cluster|sentinel] <url>")
			}
		case "namespace":
			err = oneArg(d, &a.Namespace)
		case "instance":
			err = oneArg(d, &a.Instance)
		case "gitlab_version":
			err = oneArg(d, &a.GitLabVersion)
		case "workers":
			err = intArg(d, &a.Workers)
		case "timeout":
			err = durationArg(d, &a.Timeout)
		case "lease":
			err = durationArg(d, &a.Lease)
		case "claim_interval":
			err = durationArg(d, &a.ClaimInterval)
		case "log_retention":
			err = durationArg(d, &a.LogRetention)
		case "log_max_entries":
			err = intArg(d, &a.LogMaxEntries)
		case "log_max_request_body":
			err = sizeArg(d, &a.LogMaxRequestBody)
		case "max_response_body":
			err = sizeArg(d, &a.MaxResponseBody)
		case "max_payload":
			err = sizeArg(d, &a.MaxPayload)
		case "allow_local_requests":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.AllowLocalRequests = true
		case "spool_dir":
			err = oneArg(d, &a.SpoolDir)
		case "spool_max_size":
			err = sizeArg(d, &a.SpoolMaxSize)
		case "allow_networks":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Err("usage: allow_networks <cidr|ip...>")
			}
			for _, n := range args {
				if _, err := delivery.ParseNetwork(n); err != nil {
					return d.Errf("allow_networks: %v", err)
				}
			}
			a.AllowNetworks = append(a.AllowNetworks, args...)
		case "redis_ca":
			err = oneArg(d, &a.RedisCA)
		case "redis_client_cert":
			if !d.Args(&a.RedisClientCert, &a.RedisClientKey) || d.NextArg() {
				return d.Err("usage: redis_client_cert <cert file> <key file>")
			}
		case "replica_acks":
			err = intArg(d, &a.ReplicaAcks)
		case "shards":
			if err = intArg(d, &a.Shards); err == nil && (a.Shards < 1 || a.Shards > redisstore.MaxShards) {
				err = d.Errf("shards must be between 1 and %d, got %d", redisstore.MaxShards, a.Shards)
			}
		case "max_attempts":
			err = intArg(d, &a.MaxAttempts)
		case "retry_backoff":
			err = durationArg(d, &a.RetryBackoff)
		case "max_retry_backoff":
			err = durationArg(d, &a.MaxRetryBackoff)
		case "retry_schedule":
			a.RetrySchedule, err = retryScheduleArgs(d)
		case "replay_rate":
			if err = intArg(d, &a.ReplayRate); err == nil && a.ReplayRate < 1 {
				err = d.Errf("replay_rate must be at least 1 delivery a second, got %d", a.ReplayRate)
			}
		case "auto_disable":
			a.AutoDisable, err = autoDisableArgs(d)
		case "max_delivery_age":
			err = durationArg(d, &a.MaxDeliveryAge)
		case "max_dead_letters":
			err = intArg(d, &a.MaxDeadLetters)
		case "max_dead_letter_bytes":
			err = sizeArg(d, &a.MaxDeadLetterBytes)
		case "hook_concurrency":
			err = intArg(d, &a.HookConcurrency)
		case "calls_per_minute":
			err = intArg(d, &a.CallsPerMinute)
		case "disable_after_failures":
			err = intArg(d, &a.DisableAfterFailures)
		case "disable_for":
			err = durationArg(d, &a.DisableFor)
		case "max_disable_for":
			err = durationArg(d, &a.MaxDisableFor)
		case "silent_mode":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.SilentMode = true
		case "encryption_key":
			err = oneArg(d, &a.EncryptionKey)
		case "egress_proxy":
			err = proxyArg(d, &a.EgressProxy)
		case "signing_token_overlap":
			var v string
			if err = oneArg(d, &v); err == nil {
				a.SigningTokenOverlap, err = durationOrOff(d, v)
			}
		case "alerts":
			if a.Alerts != nil {
				return d.Err("alerts is given twice")
			}
			a.Alerts = new(AlertsConfig)
			err = a.Alerts.unmarshalCaddyfile(d)
		case "hook":
			h := new(HookConfig)
			var at caddyfile.Token
			if at, err = h.unmarshalCaddyfile(d); err == nil {
				a.Hooks = append(a.Hooks, h)
				urls = append(urls, hookURL{h, at})
			}
		default:
			return d.Errf("unrecognized webhooks option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return a.checkHookURLs(urls)
}

// hookURL is a hook of the Caddyfile with the token of its url line.
type hookURL struct {
	hook *HookConfig
	at   caddyfile.Token
}

// checkHookURLs refuses a hook URL that leads to a local address the
// network policy refuses, naming its line, as GitLab refuses such a URL
// when a hook is saved. It runs once the block is read, as
// allow_local_requests may come after the hooks. A URL whose host is a
// placeholder is checked when the config is loaded.
func (a *App) checkHookURLs(urls []hookURL) error {
	network, err := a.networkPolicy()
	if err != nil {
		return err // allow_networks entries were checked as they were read
	}
	for _, u := range urls {
		if err := network.CheckURL(u.hook.URL, u.hook.URLVariables); err != nil {
			d := caddyfile.NewDispenser([]caddyfile.Token{u.at})
			d.Next()
			masked := hooklog.MaskSecrets(&webhook.Hook{URL: u.hook.URL, URLVariables: u.hook.URLVariables}, err.Error())
			return d.Errf("hook %s: url %s: %s", u.hook.Name, gitlab.MaskURL(u.hook.URL), masked)
		}
	}
	return nil
}

// unmarshalCaddyfile reads a hook block; it returns the url line's token.
func (h *HookConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) (urlAt caddyfile.Token, err error) {
	if !d.NextArg() {
		return urlAt, d.Err("hook needs a name: hook <name> { … }")
	}
	h.Name = d.Val()
	if d.NextArg() {
		return urlAt, d.ArgErr()
	}
	var pairAt caddyfile.Token // the client_cert or client_key line
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "id":
			var id int
			if err = intArg(d, &id); err == nil {
				if id <= 0 {
					return urlAt, d.Errf("hook id must be positive, got %d", id)
				}
				h.ID = int64(id)
			}
		case "url":
			urlAt = d.Token()
			err = oneArg(d, &h.URL)
		case "token":
			err = oneArg(d, &h.Token)
		case "project":
			err = oneArg(d, &h.Project)
		case "group":
			err = oneArg(d, &h.Group)
		case "events":
			h.Events = append(h.Events, d.RemainingArgs()...)
			if len(h.Events) == 0 {
				return urlAt, d.ArgErr()
			}
		case "branch_filter":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return urlAt, d.Err("usage: branch_filter <wildcard|regex|all_branches> [<filter>]")
			}
			h.BranchFilterStrategy = args[0]
			if len(args) == 2 {
				h.PushEventsBranchFilter = args[1]
			}
		case "ssl_verification":
			h.EnableSSLVerification, err = onOffArg(d)
		case "trace_context":
			h.TraceContext, err = onOffArg(d)
		case "egress_proxy":
			err = proxyArg(d, &h.EgressProxy)
		case "client_cert":
			pairAt = d.Token()
			err = oneArg(d, &h.ClientCert)
		case "client_key":
			pairAt = d.Token()
			err = oneArg(d, &h.ClientKey)
		case "ca":
			err = oneArg(d, &h.CA)
		case "custom_header":
			// The value may hold placeholders: it is checked once resolved.
			err = pairArg(d, &h.CustomHeaders, gitlab.ValidateCustomHeaderName)
		case "url_variable":
			err = pairArg(d, &h.URLVariables, nil)
		case "signing_token":
			err = oneArg(d, &h.SigningToken)
		case "custom_webhook_template":
			err = oneArg(d, &h.CustomWebhookTemplate)
		case "ordered":
			if d.NextArg() {
				return urlAt, d.Errf("ordered takes no value, got %q", d.Val())
			}
			h.Ordered = true
		case "retry_schedule":
			h.RetrySchedule, err = retryScheduleArgs(d)
		case "auto_disable":
			h.AutoDisable, err = autoDisableArgs(d)
		default:
			return urlAt, d.Errf("unrecognized hook option %q", d.Val())
		}
		if err != nil {
			return urlAt, err
		}
	}
	if h.URL == "" {
		return urlAt, d.Errf("hook %s: url is required", h.Name)
	}
	if (h.ClientCert == "") != (h.ClientKey == "") {
		at := caddyfile.NewDispenser([]caddyfile.Token{pairAt})
		at.Next()
		return urlAt, at.Errf("hook %s: client_cert and client_key go together: give both or neither", h.Name)
	}
	return urlAt, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webhooks_capture [<matcher>] {
//		max_body        <size>
//		enqueue_timeout <duration>
//		trusted_event_uuid_from <cidr|ip|private_ranges...>
//		rule [<name>] { … }   (see CaptureRule.unmarshalCaddyfile)
//	}
func (c *Capture) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "max_body":
			err = sizeArg(d, &c.MaxBody)
		case "enqueue_timeout":
			err = durationArg(d, &c.EnqueueTimeout)
		case "rule":
			rule := new(CaptureRule)
			if err = rule.unmarshalCaddyfile(d); err == nil {
				c.Rules = append(c.Rules, rule)
			}
		case "trusted_event_uuid_from":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Err("usage: trusted_event_uuid_from <cidr|ip|private_ranges...>")
			}
			for _, n := range args {
				if n == "private_ranges" { // as Caddy's trusted_proxies
					c.TrustedEventUUIDFrom = append(c.TrustedEventUUIDFrom, caddyhttp.PrivateRangesCIDR()...)
					continue
				}
				if _, err := caddyhttp.CIDRExpressionToPrefix(n); err != nil {
					return d.Errf("trusted_event_uuid_from: %v", err)
				}
				c.TrustedEventUUIDFrom = append(c.TrustedEventUUIDFrom, n)
			}
		default:
			return d.Errf("unrecognized webhooks_capture option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// retryScheduleArgs reads "retry_schedule <duration...>" (Go durations,
// and days as 1d), checked at once so a bad wait names its line.
func retryScheduleArgs(d *caddyfile.Dispenser) ([]caddy.Duration, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Err("usage: retry_schedule <duration...>, e.g. retry_schedule 10s 1m 5m 30m 2h")
	}
	waits, err := webhook.ParseRetrySchedule(args)
	if err != nil {
		return nil, d.Err(err.Error())
	}
	out := make([]caddy.Duration, len(waits))
	for i, w := range waits {
		out[i] = caddy.Duration(w)
	}
	return out, nil
}

// autoDisableArgs reads "auto_disable gitlab|off|permanent_after [<n>]".
func autoDisableArgs(d *caddyfile.Dispenser) (string, error) {
	args := d.RemainingArgs()
	a, err := webhook.ParseAutoDisable(strings.Join(args, " "))
	if err != nil {
		return "", d.Err(err.Error())
	}
	return a.String(), nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	option := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("%s: %q is not a whole number", option, s)
	}
	*dst = n
	return nil
}

// durationOrOff parses a duration, or off as -1 (none).
func durationOrOff(d *caddyfile.Dispenser, s string) (caddy.Duration, error) {
	if s == "off" {
		return -1, nil
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("%q is not a duration (or off): %v", s, err)
	}
	return caddy.Duration(v), nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%q is not a duration: %v", s, err)
	}
	*dst = caddy.Duration(v)
	return nil
}

func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v > 1<<40 {
		return d.Errf("%q is not a size (e.g. 512KiB, 1MB)", s)
	}
	*dst = int64(v)
	return nil
}

// pairArg reads "<name> <value>" into dst; checkName, if set, vets the name.
func pairArg(d *caddyfile.Dispenser, dst *map[string]string, checkName func(string) error) error {
	directive := d.Val()
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("usage: %s <name> <value>", directive)
	}
	if checkName != nil {
		if err := checkName(args[0]); err != nil {
			return d.Errf("%s: %v", directive, err)
		}
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	if _, dup := (*dst)[args[0]]; dup {
		return d.Errf("%q is given twice", args[0])
	}
	(*dst)[args[0]] = args[1]
	return nil
}

// proxyArg reads an egress proxy URL, or off; a URL with a placeholder is
// checked once resolved, when the config loads.
func proxyArg(d *caddyfile.Dispenser, dst *string) error {
	if err := oneArg(d, dst); err != nil {
		return err
	}
	if *dst == webhook.EgressOff || strings.Contains(*dst, "{") {
		return nil
	}
	if _, err := webhook.ParseProxy(*dst); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// onOffArg reads an option's one argument, on or off.
func onOffArg(d *caddyfile.Dispenser) (*bool, error) {
	option := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return nil, err
	}
	on, ok := parseOnOff(v)
	if !ok {
		return nil, d.Errf("%s takes on or off, got %q", option, v)
	}
	return &on, nil
}

func parseOnOff(v string) (on, ok bool) {
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Capture)(nil)
)
