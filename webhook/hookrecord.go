package webhook

import (
	"fmt"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// Kind says whether a hook belongs to a project or a group.
type Kind string

// The two kinds of hook owners.
const (
	KindProject Kind = "project"
	KindGroup   Kind = "group"
)

// KindOfSegment reads the first segment of GitLab's API paths ("projects"
// or "groups").
func KindOfSegment(seg string) (Kind, bool) {
	switch seg {
	case "projects":
		return KindProject, true
	case "groups":
		return KindGroup, true
	}
	return "", false
}

// own gives h the project or group that owns it.
func (k Kind) own(h *Hook, path string) bool {
	switch k {
	case KindProject:
		h.Project = path
	case KindGroup:
		h.Group = path
	default:
		return false
	}
	return true
}

// MaxHookID bounds API-assigned hook ids: configured hooks use ids from
// 2^52 up, and JSON clients read integers exactly only below 2^53.
const MaxHookID = int64(1)<<52 - 1

// Namespace is a project or a group: its full path and the numeric id the
// store gave it the first time the path was used.
type Namespace struct {
	Kind Kind
	ID   int64
	Path string
}

// HookRecord is a hook managed through the API, secrets in clear (the store
// seals them).
type HookRecord struct {
	ID          int64
	Kind        Kind
	Path        string
	NamespaceID int64
	Name        string
	Description string
	// URL may hold {name} references to URLVariables.
	URL   string
	Token string
	// Triggers are gitlab.Trigger values ("push", "tag_push", …).
	Triggers               []string
	BranchFilterStrategy   string
	PushEventsBranchFilter string
	EnableSSLVerification  bool
	URLVariables           map[string]string
	CustomHeaders          map[string]string
	// Signing are the Standard Webhooks signing tokens (GitLab's
	// signing_token), the one being rotated out included.
	Signing gitlab.SigningTokens
	// CustomWebhookTemplate, when set, is sent instead of the event's
	// payload (GitLab's custom_webhook_template); kept in clear, as GitLab.
	CustomWebhookTemplate string
	// Ordered sends the hook's deliveries one at a time in capture order
	// (an extension GitLab's clients ignore).
	Ordered bool
	// RetrySchedule and AutoDisable override the app's retry policy and
	// auto-disable rule for this hook (extensions; nil: the app's).
	RetrySchedule []time.Duration
	AutoDisable   *AutoDisable
	// NoTraceContext keeps the W3C traceparent and tracestate headers off
	// the hook's deliveries (an extension: GitLab sends neither).
	NoTraceContext bool
	// EgressProxy is the hook's own forward proxy URL, or EgressOff
	// (extension); its user info is a secret.
	EgressProxy string
	// ClientCert, ClientKey (a secret) and CA are PEM text: the hook's
	// client certificate and private CAs (extension).
	ClientCert, ClientKey, CA string
	CreatedAt                 time.Time
}

// HasSecrets reports whether the record holds a value that needs the key
// to be stored: a token, URL variables, custom headers, a client key, or a
// URL (the hook's or its proxy's) whose user info or query the masked
// form hides.
func (r *HookRecord) HasSecrets() bool {
	return r.Token != "" || r.Signing.Current != "" || len(r.URLVariables) > 0 || len(r.CustomHeaders) > 0 ||
		gitlab.MaskURL(r.URL) != r.URL || r.ClientKey != "" || gitlab.MaskURL(r.EgressProxy) != r.EgressProxy
}

// Hook is the record as the hook deliveries go to, validated by GitLab's
// rules (Hook.Validate): a hook that breaks them comes with a
// *InvalidError, a bad branch filter included.
func (r *HookRecord) Hook() (*Hook, error) {
	h := &Hook{
		ID: r.ID, Name: r.Name, URL: r.URL, URLVariables: r.URLVariables, Token: r.Token,
		EnableSSLVerification: r.EnableSSLVerification, CustomHeaders: r.CustomHeaders,
		Signing: r.Signing, CustomWebhookTemplate: r.CustomWebhookTemplate, NoTraceContext: r.NoTraceContext,
		EgressProxy: r.EgressProxy, Ordered: r.Ordered, RetrySchedule: r.RetrySchedule, AutoDisable: r.AutoDisable,
	}
	if r.ClientCert != "" || r.ClientKey != "" || r.CA != "" {
		h.TLS = &ClientTLS{Cert: r.ClientCert, Key: r.ClientKey, CA: r.CA}
	}
	if !r.Kind.own(h, r.Path) {
		return nil, fmt.Errorf("hook %d has unknown owner kind %q", r.ID, r.Kind)
	}
	for _, t := range r.Triggers {
		tr, ok := gitlab.ParseTrigger(t)
		if !ok || tr.ChatOnly() {
			return nil, fmt.Errorf("hook %d has unknown trigger %q", r.ID, t)
		}
		h.Triggers.Add(tr)
	}
	var v Invalid
	bf, err := gitlab.NewBranchFilter(r.BranchFilterStrategy, r.PushEventsBranchFilter)
	if err != nil {
		v.Add(BadBranchFilter, err)
	}
	h.BranchFilter = bf
	h.Check(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return h, nil
}
