package module

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/grt-continuation/caddy-webhooks/engine/alerts"
	"github.com/grt-continuation/caddy-webhooks/engine/delivery"
	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// AlertsConfig sends the operator's alerts to endpoints of theirs: a hook
// disabled (temporarily or until re-enabled) and re-enabled, deliveries
// dead-lettered (rolled up), the oldest ready delivery older than
// QueueAge, and Caddy spooling events because Redis is down (and Redis
// back). Each alert is a JSON object signed with the Standard Webhooks
// headers; docs/api.md describes them.
type AlertsConfig struct {
	// Endpoints receive every alert.
	Endpoints []*AlertEndpoint `json:"endpoints,omitempty"`

	// DeadLetterInterval is the least time between two alerts of one
	// hook's dead letters, which are counted meanwhile, and between two
	// backlog alerts. Default: 10m.
	DeadLetterInterval caddy.Duration `json:"dead_letter_interval,omitempty"`

	// QueueAge is how long the oldest ready delivery may wait before the
	// backlog is alerted; negative: never. Default: 5m.
	QueueAge caddy.Duration `json:"queue_age,omitempty"`
}

// AlertEndpoint is one of the operator's alert endpoints.
type AlertEndpoint struct {
	// Name names the endpoint in logs and in the admin API's hooks.
	// Default: alerts-<n>, n its place in the list from 1.
	Name string `json:"name,omitempty"`

	// URL receives the alerts (a POST each). Checked as hook URLs are
	// (allow_local_requests, allow_networks).
	URL string `json:"url"`

	// SigningToken signs every alert (webhook-id, webhook-timestamp,
	// webhook-signature): whsec_ and the base64 of a 32-byte key.
	// Placeholders such as {env.ALERTS_SIGNING_TOKEN} are resolved.
	// Required.
	SigningToken string `json:"signing_token"`
}

// config is the engine's settings of the alerts.
func (c *AlertsConfig) config() alerts.Config {
	if c == nil {
		return alerts.Config{}
	}
	return alerts.Config{DeadLetterInterval: time.Duration(c.DeadLetterInterval), QueueAge: time.Duration(c.QueueAge)}
}

// hooks builds the endpoints as the engine's operator hooks: never
// disabled by their failures (their alerts would go nowhere).
func (c *AlertsConfig) hooks(repl *caddy.Replacer, network *delivery.NetworkPolicy) ([]*webhook.Hook, error) {
	if c == nil {
		return nil, nil
	}
	off := webhook.AutoDisable{Mode: webhook.AutoDisableOff}
	var out []*webhook.Hook
	for i, e := range c.Endpoints {
		name := e.Name
		if name == "" {
			name = fmt.Sprintf("alerts-%d", i+1)
		}
		h := &webhook.Hook{
			ID: configHookID("alerts\x00" + name), Name: name,
			URL: repl.ReplaceKnown(e.URL, ""), Signing: gitlab.SigningTokens{Current: repl.ReplaceKnown(e.SigningToken, "")},
			EnableSSLVerification: true, ReadOnly: true, Operator: true, AutoDisable: &off,
		}
		if h.Signing.Current == "" {
			return nil, fmt.Errorf("alerts endpoint %s: a signing_token (whsec_…) is required: alerts are signed", name)
		}
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("alerts endpoint %s: %w", name, err)
		}
		if err := network.CheckURL(h.URL, nil); err != nil {
			return nil, fmt.Errorf("alerts endpoint %s: url %s: %s", name, h.MaskedURL(), hooklog.MaskSecrets(h, err.Error()))
		}
		out = append(out, h)
	}
	return out, nil
}

// unmarshalCaddyfile reads an alerts block:
//
//	alerts {
//		endpoint <url> {
//			signing_token <whsec_…>
//			name          <name>
//		}
//		dead_letter_interval <duration>
//		queue_age            <duration>|off
//	}
func (c *AlertsConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "endpoint":
			e := new(AlertEndpoint)
			if !d.NextArg() {
				return d.Err("usage: endpoint <url> { signing_token <whsec_…> }")
			}
			e.URL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			at := d.Token()
			for inner := d.Nesting(); d.NextBlock(inner); {
				switch d.Val() {
				case "signing_token":
					err = oneArg(d, &e.SigningToken)
				case "name":
					err = oneArg(d, &e.Name)
				default:
					return d.Errf("unrecognized alerts endpoint option %q", d.Val())
				}
				if err != nil {
					return err
				}
			}
			if e.SigningToken == "" {
				d := caddyfile.NewDispenser([]caddyfile.Token{at})
				d.Next()
				return d.Errf("alerts endpoint %s needs a signing_token (whsec_…): alerts are signed", e.URL)
			}
			c.Endpoints = append(c.Endpoints, e)
		case "dead_letter_interval":
			err = durationArg(d, &c.DeadLetterInterval)
		case "queue_age":
			var v string
			if err = oneArg(d, &v); err == nil {
				c.QueueAge, err = durationOrOff(d, v)
			}
		default:
			return d.Errf("unrecognized alerts option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	if len(c.Endpoints) == 0 {
		return d.Err("alerts needs at least one endpoint <url> { signing_token … }")
	}
	return nil
}
