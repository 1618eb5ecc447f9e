package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// storedHook is the JSON a hook is kept as. As GitLab encrypts the whole
// URL, the URL is sealed (URLSealed) and URL keeps only its masked form;
// without a key, a URL with nothing to mask is kept in URL alone. Hooks
// stored before URLs were sealed have the URL in clear in URL, and still
// load. Token and the values of URLVariables and CustomHeaders are sealed
// too, and so are the egress proxy (as the URL is) and the client key;
// the client certificate and CAs are public.
type storedHook struct {
	Kind                   webhook.Kind      `json:"kind"`
	Path                   string            `json:"path"`
	NamespaceID            int64             `json:"namespace_id"`
	Name                   string            `json:"name,omitempty"`
	Description            string            `json:"description,omitempty"`
	URL                    string            `json:"url"`
	URLSealed              string            `json:"url_sealed,omitempty"`
	Token                  string            `json:"token,omitempty"`
	Triggers               []string          `json:"triggers,omitempty"`
	BranchFilterStrategy   string            `json:"branch_filter_strategy,omitempty"`
	PushEventsBranchFilter string            `json:"push_events_branch_filter,omitempty"`
	EnableSSLVerification  bool              `json:"enable_ssl_verification"`
	URLVariables           map[string]string `json:"url_variables,omitempty"`
	CustomHeaders          map[string]string `json:"custom_headers,omitempty"`
	SigningToken           string            `json:"signing_token,omitempty"`
	PreviousSigningToken   string            `json:"previous_signing_token,omitempty"`
	PreviousSigningUntil   *time.Time        `json:"previous_signing_until,omitempty"`
	CustomWebhookTemplate  string            `json:"custom_webhook_template,omitempty"`
	Ordered                bool              `json:"ordered,omitempty"`
	RetrySchedule          []time.Duration   `json:"retry_schedule,omitempty"`
	AutoDisable            string            `json:"auto_disable,omitempty"`
	NoTraceContext         bool              `json:"no_trace_context,omitempty"`
	EgressProxy            string            `json:"egress_proxy,omitempty"`
	EgressProxySealed      string            `json:"egress_proxy_sealed,omitempty"`
	ClientCert             string            `json:"client_cert,omitempty"`
	ClientKey              string            `json:"client_key,omitempty"`
	CA                     string            `json:"ca,omitempty"`
	CreatedAt              time.Time         `json:"created_at"`
}

func sealContext(id int64, field, key string) string {
	if key == "" {
		return "hook:" + strconv.FormatInt(id, 10) + ":" + field
	}
	return "hook:" + strconv.FormatInt(id, 10) + ":" + field + ":" + key
}

func (h *Hooks) encode(r *webhook.HookRecord) (string, error) {
	st := storedHook{
		Kind: r.Kind, Path: r.Path, NamespaceID: r.NamespaceID, Name: r.Name, Description: r.Description,
		URL: gitlab.MaskURL(r.URL), Triggers: r.Triggers, BranchFilterStrategy: r.BranchFilterStrategy,
		PushEventsBranchFilter: r.PushEventsBranchFilter, EnableSSLVerification: r.EnableSSLVerification,
		CustomWebhookTemplate: r.CustomWebhookTemplate, NoTraceContext: r.NoTraceContext, CreatedAt: r.CreatedAt.UTC(),
		EgressProxy: gitlab.MaskURL(r.EgressProxy), ClientCert: r.ClientCert, CA: r.CA,
		Ordered: r.Ordered, RetrySchedule: r.RetrySchedule,
	}
	if r.AutoDisable != nil {
		st.AutoDisable = r.AutoDisable.String()
	}
	var err error
	switch {
	case h.box != nil:
		if st.URLSealed, err = h.box.Seal(r.URL, sealContext(r.ID, "url", "")); err != nil {
			return "", fmt.Errorf("sealing the URL of hook %d: %w", r.ID, err)
		}
	case st.URL != r.URL:
		return "", fmt.Errorf("storing the URL of hook %d: %w", r.ID, secret.ErrNoKey)
	}
	if r.Token != "" {
		if st.Token, err = h.box.Seal(r.Token, sealContext(r.ID, "token", "")); err != nil {
			return "", fmt.Errorf("sealing the token of hook %d: %w", r.ID, err)
		}
	}
	if err := h.sealSigning(r, &st); err != nil {
		return "", err
	}
	if err := h.sealEgress(r, &st); err != nil {
		return "", err
	}
	if st.URLVariables, err = h.sealMap(r.ID, "url_variable", r.URLVariables); err != nil {
		return "", err
	}
	if st.CustomHeaders, err = h.sealMap(r.ID, "custom_header", r.CustomHeaders); err != nil {
		return "", err
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return "", fmt.Errorf("encoding hook %d: %w", r.ID, err)
	}
	return string(b), nil
}

func (h *Hooks) sealMap(id int64, field string, m map[string]string) (map[string]string, error) {
	return eachValue(id, field, "sealing", m, h.box.Seal)
}

func (h *Hooks) openMap(id int64, field string, m map[string]string) (map[string]string, error) {
	return eachValue(id, field, "opening", m, h.box.Open)
}

// eachValue seals or opens (with fn, named by verb) each value of the map
// field of hook id, each under its own context.
func eachValue(id int64, field, verb string, m map[string]string, fn func(v, context string) (string, error)) (map[string]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, err := fn(v, sealContext(id, field, k))
		if err != nil {
			return nil, fmt.Errorf("%s %s %q of hook %d: %w", verb, field, k, id, err)
		}
		out[k] = s
	}
	return out, nil
}

func (h *Hooks) decode(id int64, raw string) (*webhook.HookRecord, error) {
	var st storedHook
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return nil, fmt.Errorf("decoding hook %d: %w", id, err)
	}
	r := &webhook.HookRecord{
		ID: id, Kind: st.Kind, Path: st.Path, NamespaceID: st.NamespaceID, Name: st.Name,
		Description: st.Description, URL: st.URL, Triggers: st.Triggers,
		BranchFilterStrategy: st.BranchFilterStrategy, PushEventsBranchFilter: st.PushEventsBranchFilter,
		EnableSSLVerification: st.EnableSSLVerification, CustomWebhookTemplate: st.CustomWebhookTemplate,
		NoTraceContext: st.NoTraceContext, CreatedAt: st.CreatedAt,
		EgressProxy: st.EgressProxy, ClientCert: st.ClientCert, CA: st.CA,
		Ordered: st.Ordered, RetrySchedule: st.RetrySchedule,
	}
	if st.AutoDisable != "" {
		a, err := webhook.ParseAutoDisable(st.AutoDisable)
		if err != nil {
			return nil, fmt.Errorf("decoding hook %d: %w", id, err)
		}
		r.AutoDisable = &a
	}
	var err error
	if st.URLSealed != "" {
		if r.URL, err = h.box.Open(st.URLSealed, sealContext(id, "url", "")); err != nil {
			return nil, fmt.Errorf("opening the URL of hook %d: %w", id, err)
		}
	}
	if st.Token != "" {
		if r.Token, err = h.box.Open(st.Token, sealContext(id, "token", "")); err != nil {
			return nil, fmt.Errorf("opening the token of hook %d: %w", id, err)
		}
	}
	if r.Signing, err = h.openSigning(id, &st); err != nil {
		return nil, err
	}
	if err := h.openEgress(id, &st, r); err != nil {
		return nil, err
	}
	if r.URLVariables, err = h.openMap(id, "url_variable", st.URLVariables); err != nil {
		return nil, err
	}
	if r.CustomHeaders, err = h.openMap(id, "custom_header", st.CustomHeaders); err != nil {
		return nil, err
	}
	return r, nil
}

// sealSigning seals a hook's signing tokens into st, as the token is.
func (h *Hooks) sealSigning(r *webhook.HookRecord, st *storedHook) error {
	var err error
	if r.Signing.Current != "" {
		if st.SigningToken, err = h.box.Seal(r.Signing.Current, sealContext(r.ID, "signing_token", "")); err != nil {
			return fmt.Errorf("sealing the signing token of hook %d: %w", r.ID, err)
		}
	}
	if r.Signing.Previous != "" {
		if st.PreviousSigningToken, err = h.box.Seal(r.Signing.Previous, sealContext(r.ID, "previous_signing_token", "")); err != nil {
			return fmt.Errorf("sealing the previous signing token of hook %d: %w", r.ID, err)
		}
		until := r.Signing.PreviousUntil.UTC()
		st.PreviousSigningUntil = &until
	}
	return nil
}

// openSigning opens the signing tokens sealSigning stored.
func (h *Hooks) openSigning(id int64, st *storedHook) (gitlab.SigningTokens, error) {
	var s gitlab.SigningTokens
	var err error
	if st.SigningToken != "" {
		if s.Current, err = h.box.Open(st.SigningToken, sealContext(id, "signing_token", "")); err != nil {
			return s, fmt.Errorf("opening the signing token of hook %d: %w", id, err)
		}
	}
	if st.PreviousSigningToken != "" {
		if s.Previous, err = h.box.Open(st.PreviousSigningToken, sealContext(id, "previous_signing_token", "")); err != nil {
			return s, fmt.Errorf("opening the previous signing token of hook %d: %w", id, err)
		}
		if st.PreviousSigningUntil != nil {
			s.PreviousUntil = *st.PreviousSigningUntil
		}
	}
	return s, nil
}

// sealEgress seals a hook's egress proxy (as the URL: the masked form
// stays in clear) and its client key into st.
func (h *Hooks) sealEgress(r *webhook.HookRecord, st *storedHook) error {
	var err error
	switch {
	case r.EgressProxy != "" && h.box != nil:
		if st.EgressProxySealed, err = h.box.Seal(r.EgressProxy, sealContext(r.ID, "egress_proxy", "")); err != nil {
			return fmt.Errorf("sealing the egress proxy of hook %d: %w", r.ID, err)
		}
	case st.EgressProxy != r.EgressProxy:
		return fmt.Errorf("storing the egress proxy of hook %d: %w", r.ID, secret.ErrNoKey)
	}
	if r.ClientKey != "" {
		if st.ClientKey, err = h.box.Seal(r.ClientKey, sealContext(r.ID, "client_key", "")); err != nil {
			return fmt.Errorf("sealing the client key of hook %d: %w", r.ID, err)
		}
	}
	return nil
}

// openEgress opens what sealEgress sealed into r.
func (h *Hooks) openEgress(id int64, st *storedHook, r *webhook.HookRecord) error {
	var err error
	if st.EgressProxySealed != "" {
		if r.EgressProxy, err = h.box.Open(st.EgressProxySealed, sealContext(id, "egress_proxy", "")); err != nil {
			return fmt.Errorf("opening the egress proxy of hook %d: %w", id, err)
		}
	}
	if st.ClientKey != "" {
		if r.ClientKey, err = h.box.Open(st.ClientKey, sealContext(id, "client_key", "")); err != nil {
			return fmt.Errorf("opening the client key of hook %d: %w", id, err)
		}
	}
	return nil
}
