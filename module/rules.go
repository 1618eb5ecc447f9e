package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// CaptureRule declares which responses of an app are events, for apps that
// cannot set X-Webhook-* headers themselves. A response is an event when
// the request matched the rule's matchers and the response its status and
// headers; the first such rule (in order) makes the event. Signal headers
// win over rules: a response that sets X-Webhook-Event is taken as it says.
//
// Event, Project, Group and Ref are each a literal or hold placeholders:
// any of the request's ({http.request.uri.path.2},
// {http.request.header.X-Tenant}, …), {http.response.status},
// {http.response.header.<Name>}, and {json.<path>} for a field of the
// response's JSON body (a gjson path: {json.project.path_with_namespace},
// {json.labels.0}). A placeholder that resolves to nothing is left as it is,
// so the event is refused with a message naming it.
type CaptureRule struct {
	// Name identifies the rule in logs. Default: rule #<n>.
	Name string `json:"name,omitempty"`

	// MatcherSetsRaw selects requests with Caddy's request matchers (path,
	// method, header, query, expression, …): the rule applies when any of
	// the sets matches. Empty: every request.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	// Response selects responses by status and headers, as reverse_proxy's
	// handle_response matchers (status_code 201, or 2 for every 2xx).
	// Only 2xx responses with a body (not 204, 206 or answers to HEAD) can
	// be events. Default: any 2xx.
	Response *caddyhttp.ResponseMatcher `json:"response,omitempty"`

	// Event is the trigger (push, issues, merge_requests, … as
	// X-Webhook-Event). Required.
	Event string `json:"event"`

	// Project is the project's full path (or its name, with Group).
	// Required for project events.
	Project string `json:"project,omitempty"`

	// Group is the group's full path. Required for group events (member,
	// subgroup, project).
	Group string `json:"group,omitempty"`

	// Ref is the git ref of a push or tag push. Default: the payload's ref.
	Ref string `json:"ref,omitempty"`

	// Template maps the app's JSON body to the payload, with GitLab's
	// custom webhook template syntax: {{a.b.c}} is the body's value at that
	// path, JSON-encoded (strings without their quotes, so "{{title}}" is
	// safe); {{@trigger}}, {{@project}}, {{@group}} and {{@ref}} are the
	// rule's resolved fields. The result must be a JSON object of at most
	// max_body bytes (the rendering stops there, and the event is rejected
	// as too large). Default: the body as is.
	Template string `json:"template,omitempty"`

	matchers caddyhttp.MatcherSets
	tmpl     *gitlab.Template
}

// provisionRules loads the rules' matchers and checks them.
func (c *Capture) provisionRules(ctx caddy.Context) error {
	for i, rule := range c.Rules {
		if rule.Name == "" {
			rule.Name = "rule #" + strconv.Itoa(i+1)
		}
		if err := rule.check(); err != nil {
			return fmt.Errorf("capture %s: %w", rule.Name, err)
		}
		if len(rule.MatcherSetsRaw) == 0 {
			continue
		}
		sets, err := ctx.LoadModule(rule, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("capture %s: loading matchers: %w", rule.Name, err)
		}
		if err := rule.matchers.FromInterface(sets); err != nil {
			return fmt.Errorf("capture %s: %w", rule.Name, err)
		}
	}
	return nil
}

// check validates what can be known before a request arrives.
func (rule *CaptureRule) check() error {
	switch {
	case rule.Event == "":
		return errors.New("event is required")
	case rule.Project == "" && rule.Group == "":
		return errors.New("project or group is required")
	}
	if err := checkTrigger(rule.Event); err != nil {
		return err
	}
	if rule.Response != nil {
		for _, code := range rule.Response.StatusCode {
			if err := checkRuleStatus(code); err != nil {
				return err
			}
		}
	}
	if rule.Template != "" {
		t, err := gitlab.ParseTemplate(rule.Template)
		if err != nil {
			return fmt.Errorf("template: %w", err)
		}
		rule.tmpl = t
	}
	return nil
}

func checkTrigger(event string) error {
	if strings.Contains(event, "{") {
		return nil // known per response
	}
	if _, ok := gitlab.ParseTrigger(event); !ok {
		return fmt.Errorf("unknown event %q", event)
	}
	return nil
}

func checkRuleStatus(code int) error {
	if code != 2 && (code < 200 || code > 299) || code == http.StatusNoContent || code == http.StatusPartialContent {
		return fmt.Errorf("status %d can never be an event: only 2xx responses with a body (not 204 or 206) are captured", code)
	}
	return nil
}

// requestRules returns the rules whose request matchers match r, in order
// (nil, without allocating, when none do).
func (c *Capture) requestRules(r *http.Request) []*CaptureRule {
	var out []*CaptureRule
	for _, rule := range c.Rules {
		if len(rule.matchers) > 0 {
			ok, err := rule.matchers.AnyMatchWithError(r)
			if err != nil {
				c.logger.Debug("capture rule matcher failed", zap.String("rule", rule.Name), zap.Error(err))
			}
			if !ok {
				continue
			}
		}
		out = append(out, rule)
	}
	return out
}

// pickRule returns the first rule whose response matcher matches.
func pickRule(rules []*CaptureRule, status int, h http.Header) *CaptureRule {
	for _, rule := range rules {
		if rule.Response == nil {
			if status >= 200 && status <= 299 {
				return rule
			}
			continue
		}
		if rule.Response.Match(status, h) {
			return rule
		}
	}
	return nil
}

// event builds the event a rule declares from the response; a payload its
// template renders is bounded by maxBody while it is written, as a body is.
func (rule *CaptureRule) event(r *http.Request, tw *teeWriter, body []byte, chain string, maxBody int64) (*webhook.Event, error) {
	repl := ruleReplacer(r, tw, body)
	sig := webhook.Signals{
		Event:     repl.ReplaceKnown(rule.Event, ""),
		Project:   repl.ReplaceKnown(rule.Project, ""),
		Namespace: repl.ReplaceKnown(rule.Group, ""),
		Ref:       repl.ReplaceKnown(rule.Ref, ""),
	}
	payload := body
	if rule.tmpl != nil {
		// A template over a body that is not JSON would render nulls into a
		// well-formed but meaningless payload.
		if !json.Valid(body) {
			return nil, &webhook.RejectError{Reason: webhook.RejectPayload, Err: fmt.Errorf("capture %s: the response body is not JSON", rule.Name)}
		}
		project := sig.Project
		if sig.Namespace != "" && project != "" && !strings.Contains(project, "/") {
			project = sig.Namespace + "/" + project
		}
		var err error
		payload, err = rule.tmpl.Render(body, map[string]string{
			"trigger": sig.Event, "project": project, "group": sig.Namespace, "ref": sig.Ref}, int(maxBody))
		var tooLarge *gitlab.TooLargeError
		switch {
		case errors.As(err, &tooLarge):
			return nil, &webhook.RejectError{Reason: webhook.RejectTooLarge,
				Err: fmt.Errorf("capture %s: template: the payload it renders is larger than max_body (%d bytes)", rule.Name, maxBody)}
		case err != nil:
			return nil, &webhook.RejectError{Reason: webhook.RejectPayload, Err: fmt.Errorf("capture %s: template: %w", rule.Name, err)}
		}
	}
	ev, err := webhook.NewEvent(sig, payload, chain, time.Now())
	var rej *webhook.RejectError
	if errors.As(err, &rej) {
		return nil, &webhook.RejectError{Reason: rej.Reason, Err: fmt.Errorf("capture %s: %w", rule.Name, rej.Err)}
	}
	return ev, err
}

// ruleReplacer resolves a rule's placeholders: the response's JSON fields,
// status and headers, then the request's placeholders.
func ruleReplacer(r *http.Request, tw *teeWriter, body []byte) *caddy.Replacer {
	reqRepl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl := caddy.NewEmptyReplacer()
	repl.Map(func(key string) (any, bool) {
		switch {
		case strings.HasPrefix(key, "json."):
			v := gjson.GetBytes(body, key[len("json."):])
			if !v.Exists() || v.Type == gjson.Null {
				return nil, false
			}
			return v.String(), true
		case key == "http.response.status":
			return tw.status, true
		case strings.HasPrefix(key, "http.response.header."):
			v := tw.Header().Get(key[len("http.response.header."):])
			return v, v != ""
		case reqRepl != nil:
			return reqRepl.Get(key)
		}
		return nil, false
	})
	return repl
}

// unmarshalCaddyfile reads a rule block:
//
//	rule [<name>] {
//		match {
//			<request matchers>
//		}
//		status  <code|Nxx...>
//		header  <field> [<value>]
//		event   <trigger|placeholder>
//		project <path|placeholder>
//		group   <path|placeholder>
//		ref     <ref|placeholder>
//		payload body | template <json> | template_file <file>
//	}
//
// Mistakes are reported at the line that holds them.
func (rule *CaptureRule) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		rule.Name = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "match":
			var set caddy.ModuleMap
			if set, err = caddyhttp.ParseCaddyfileNestedMatcherSet(d); err == nil {
				rule.MatcherSetsRaw = append(rule.MatcherSetsRaw, set)
			}
		case "status":
			err = rule.statusArgs(d)
		case "header":
			if rule.Response == nil {
				rule.Response = new(caddyhttp.ResponseMatcher)
			}
			if rule.Response.Headers == nil {
				rule.Response.Headers = http.Header{}
			}
			hm := caddyhttp.MatchHeader(rule.Response.Headers) // as Caddy's response matchers parse it
			err = hm.UnmarshalCaddyfile(d.NewFromNextSegment())
		case "event":
			if err = oneArg(d, &rule.Event); err == nil {
				if err = checkTrigger(rule.Event); err != nil {
					err = d.Errf("%v", err)
				}
			}
		case "project":
			err = oneArg(d, &rule.Project)
		case "group":
			err = oneArg(d, &rule.Group)
		case "ref":
			err = oneArg(d, &rule.Ref)
		case "payload":
			err = rule.payloadArgs(d)
		default:
			return d.Errf("unrecognized capture rule option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	if err := rule.check(); err != nil {
		name := rule.Name
		if name == "" {
			name = "rule"
		}
		return d.Errf("capture rule %s: %v", name, err)
	}
	return nil
}

func (rule *CaptureRule) statusArgs(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	if rule.Response == nil {
		rule.Response = new(caddyhttp.ResponseMatcher)
	}
	for _, arg := range args {
		if len(arg) == 3 && strings.HasSuffix(arg, "xx") {
			arg = arg[:1]
		}
		code, err := strconv.Atoi(arg)
		if err != nil {
			return d.Errf("bad status %q: a code (201) or a class (2xx)", arg)
		}
		if err := checkRuleStatus(code); err != nil {
			return d.Errf("%v", err)
		}
		rule.Response.StatusCode = append(rule.Response.StatusCode, code)
	}
	return nil
}

func (rule *CaptureRule) payloadArgs(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "body":
		rule.Template = ""
		return nil
	case len(args) == 2 && args[0] == "template":
		rule.Template = args[1]
	case len(args) == 2 && args[0] == "template_file":
		b, err := os.ReadFile(args[1])
		if err != nil {
			return d.Errf("payload template_file: %v", err)
		}
		rule.Template = string(b)
	default:
		return d.Err("usage: payload body | template <json> | template_file <file>")
	}
	if _, err := gitlab.ParseTemplate(rule.Template); err != nil {
		return d.Errf("payload template: %v", err)
	}
	return nil
}
