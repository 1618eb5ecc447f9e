package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Hooks managed through the API live under one hash tag, {h0}, so the
// scripts below touch a single Redis Cluster slot:
//
//	<ns>:{h0}:hooks              hash, hook id → JSON (secrets sealed)
//	<ns>:{h0}:hooks:version      counter, bumped on every change
//	<ns>:{h0}:hooks:seq          counter, the last hook id handed out
//	<ns>:{h0}:hooks:<kind>:<path> set of the hook ids of one project or
//	                             group (path lower-cased)
//	<ns>:{h0}:ns:seq             counter, the last project/group id handed out
//	<ns>:{h0}:ns:by_path         hash, "<kind>:<lower path>" → numeric id
//	<ns>:{h0}:ns:by_id           hash, "<kind>:<id>" → full path
//	<ns>:{h0}:ns:scope:<scope>   counter, the ids handed out for a token
//	                             scope's writes (scope lower-cased)

// Hooks is the hash of API-managed hooks.
func (k Keys) Hooks() string { return k.Namespace + ":{h0}:hooks" }

// HooksVersion is bumped on every change to the hooks.
func (k Keys) HooksVersion() string { return k.Namespace + ":{h0}:hooks:version" }

// HookSeq hands out hook ids.
func (k Keys) HookSeq() string { return k.Namespace + ":{h0}:hooks:seq" }

// HookScope is the set of hook ids of one project or group.
func (k Keys) HookScope(kind Kind, path string) string {
	return k.Namespace + ":{h0}:hooks:" + string(kind) + ":" + strings.ToLower(path)
}

// NamespaceSeq hands out project and group ids.
func (k Keys) NamespaceSeq() string { return k.Namespace + ":{h0}:ns:seq" }

// NamespaceByPath maps "<kind>:<lower path>" to a numeric id.
func (k Keys) NamespaceByPath() string { return k.Namespace + ":{h0}:ns:by_path" }

// NamespaceByID maps "<kind>:<id>" to a full path.
func (k Keys) NamespaceByID() string { return k.Namespace + ":{h0}:ns:by_id" }

// NamespaceScopeCount counts the project and group ids handed out for the
// writes of a token scope.
func (k Keys) NamespaceScopeCount(scope string) string {
	return k.Namespace + ":{h0}:ns:scope:" + strings.ToLower(scope)
}

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
func (k Kind) own(h *webhook.Hook, path string) bool {
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

// Namespace is a project or a group: its full path and the numeric id this
// store gave it the first time the path was used.
type Namespace struct {
	Kind Kind
	ID   int64
	Path string
}

// HookRecord is an API-managed hook, secrets in clear. Only HookStore sees
// the sealed form.
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
	CreatedAt             time.Time
}

// HasSecrets reports whether the record holds a value that needs the key
// to be stored: a token, URL variables, custom headers, or a URL whose user
// info or query the masked form hides.
func (r *HookRecord) HasSecrets() bool {
	return r.Token != "" || r.Signing.Current != "" || len(r.URLVariables) > 0 || len(r.CustomHeaders) > 0 || gitlab.MaskURL(r.URL) != r.URL
}

// storedHook is the JSON a hook is kept as. As GitLab encrypts the whole
// URL, the URL is sealed (URLSealed) and URL keeps only its masked form;
// without a key, a URL with nothing to mask is kept in URL alone. Hooks
// stored before URLs were sealed have the URL in clear in URL, and still
// load. Token and the values of URLVariables and CustomHeaders are sealed
// too.
type storedHook struct {
	Kind                   Kind              `json:"kind"`
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
	CreatedAt              time.Time         `json:"created_at"`
}

// Errors of the hook store.
var (
	// ErrHookNotFound: no hook with that id in that project or group.
	ErrHookNotFound = errors.New("hook not found")
	// ErrHookLimit: the project or group already has its maximum of hooks.
	ErrHookLimit = errors.New("hook limit reached")
	// ErrConflict: the hook kept changing under a read-modify-write.
	ErrConflict = errors.New("hook was changed concurrently too often; try again")
	// ErrNamespaceLimit: a token scope already gave ids to its maximum of
	// projects and groups.
	ErrNamespaceLimit = errors.New("namespace limit of the scope reached")
)

// HookStore keeps API-managed hooks in Redis, secrets sealed with box.
type HookStore struct {
	s   *Store
	box *secret.Box
}

// Hooks returns the store's hook repository; box seals and opens secrets
// (nil: no key, and hooks with secrets can be neither saved nor loaded).
func (s *Store) Hooks(box *secret.Box) *HookStore { return &HookStore{s: s, box: box} }

func sealContext(id int64, field, key string) string {
	if key == "" {
		return "hook:" + strconv.FormatInt(id, 10) + ":" + field
	}
	return "hook:" + strconv.FormatInt(id, 10) + ":" + field + ":" + key
}

func (h *HookStore) encode(r *HookRecord) (string, error) {
	st := storedHook{
		Kind: r.Kind, Path: r.Path, NamespaceID: r.NamespaceID, Name: r.Name, Description: r.Description,
		URL: gitlab.MaskURL(r.URL), Triggers: r.Triggers, BranchFilterStrategy: r.BranchFilterStrategy,
		PushEventsBranchFilter: r.PushEventsBranchFilter, EnableSSLVerification: r.EnableSSLVerification,
		CustomWebhookTemplate: r.CustomWebhookTemplate, CreatedAt: r.CreatedAt.UTC(),
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

func (h *HookStore) sealMap(id int64, field string, m map[string]string) (map[string]string, error) {
	return eachValue(id, field, "sealing", m, h.box.Seal)
}

func (h *HookStore) openMap(id int64, field string, m map[string]string) (map[string]string, error) {
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

func (h *HookStore) decode(id int64, raw string) (*HookRecord, error) {
	var st storedHook
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return nil, fmt.Errorf("decoding hook %d: %w", id, err)
	}
	r := &HookRecord{
		ID: id, Kind: st.Kind, Path: st.Path, NamespaceID: st.NamespaceID, Name: st.Name,
		Description: st.Description, URL: st.URL, Triggers: st.Triggers,
		BranchFilterStrategy: st.BranchFilterStrategy, PushEventsBranchFilter: st.PushEventsBranchFilter,
		EnableSSLVerification: st.EnableSSLVerification, CustomWebhookTemplate: st.CustomWebhookTemplate,
		CreatedAt: st.CreatedAt,
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
	if r.URLVariables, err = h.openMap(id, "url_variable", st.URLVariables); err != nil {
		return nil, err
	}
	if r.CustomHeaders, err = h.openMap(id, "custom_header", st.CustomHeaders); err != nil {
		return nil, err
	}
	return r, nil
}

// KEYS[1] by_path, KEYS[2] by_id, KEYS[3] ns seq, KEYS[4] (optional) the
// scope's count; ARGV[1] "<kind>:<lower path>", ARGV[2] kind, ARGV[3] path,
// ARGV[4] the scope's limit. Returns the id, 0 when the scope is full.
var resolvePathScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return tonumber(id) end
if KEYS[4] then
  if tonumber(redis.call('GET', KEYS[4]) or '0') >= tonumber(ARGV[4]) then return 0 end
  redis.call('INCR', KEYS[4])
end
id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], id)
redis.call('HSET', KEYS[2], ARGV[2] .. ':' .. id, ARGV[3])
return id
`)

// NamespaceByPath returns the project or group with that full path, giving
// it the next numeric id the first time it is seen. Paths compare
// case-insensitively; the spelling first seen is kept.
func (h *HookStore) NamespaceByPath(ctx context.Context, kind Kind, path string) (Namespace, error) {
	return h.ClaimNamespace(ctx, kind, path, "", 0)
}

// ClaimNamespace is NamespaceByPath for a write made under a token scope:
// a path without an id gets one only while the scope has handed out fewer
// than limit (ErrNamespaceLimit otherwise). scope "" or limit 0: no cap.
func (h *HookStore) ClaimNamespace(ctx context.Context, kind Kind, path, scope string, limit int) (Namespace, error) {
	k := h.s.keys
	keys := []string{k.NamespaceByPath(), k.NamespaceByID(), k.NamespaceSeq()}
	if scope != "" && limit > 0 {
		keys = append(keys, k.NamespaceScopeCount(scope))
	}
	id, err := resolvePathScript.Run(ctx, h.s.rdb, keys,
		string(kind)+":"+strings.ToLower(path), string(kind), path, limit).Int64()
	if err != nil {
		return Namespace{}, fmt.Errorf("resolving %s %q: %w", kind, path, err)
	}
	if id == 0 {
		return Namespace{}, ErrNamespaceLimit
	}
	ns := Namespace{Kind: kind, ID: id, Path: path}
	// The stored spelling wins over this request's.
	if stored, err := h.s.rdb.HGet(ctx, k.NamespaceByID(), string(kind)+":"+strconv.FormatInt(id, 10)).Result(); err == nil {
		ns.Path = stored
	}
	return ns, nil
}

// LookupNamespace returns the project or group with that full path if it
// has an id, without giving it one; ok is false if it never had.
func (h *HookStore) LookupNamespace(ctx context.Context, kind Kind, path string) (ns Namespace, ok bool, err error) {
	k := h.s.keys
	id, err := h.s.rdb.HGet(ctx, k.NamespaceByPath(), string(kind)+":"+strings.ToLower(path)).Int64()
	if errors.Is(err, redis.Nil) {
		return Namespace{}, false, nil
	}
	if err != nil {
		return Namespace{}, false, fmt.Errorf("looking up %s %q: %w", kind, path, err)
	}
	ns, ok, err = h.NamespaceByID(ctx, kind, id)
	if err != nil || !ok {
		return Namespace{}, false, err
	}
	return ns, true, nil
}

// NamespaceByID returns the project or group with that numeric id; ok is
// false if no path was ever given that id.
func (h *HookStore) NamespaceByID(ctx context.Context, kind Kind, id int64) (ns Namespace, ok bool, err error) {
	path, err := h.s.rdb.HGet(ctx, h.s.keys.NamespaceByID(), string(kind)+":"+strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return Namespace{}, false, nil
	}
	if err != nil {
		return Namespace{}, false, fmt.Errorf("looking up %s id %d: %w", kind, id, err)
	}
	return Namespace{Kind: kind, ID: id, Path: path}, true, nil
}

var createHookScript = redis.NewScript(`
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('SCARD', KEYS[2]) >= limit then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
`)

// CreateHook stores a new hook for ns and sets r.ID, r.Kind, r.Path and
// r.NamespaceID. limit caps the hooks of ns (0: no cap); reaching it gives
// ErrHookLimit.
func (h *HookStore) CreateHook(ctx context.Context, ns Namespace, r *HookRecord, limit int) error {
	if r.HasSecrets() && h.box == nil {
		return fmt.Errorf("storing hook secrets: %w", secret.ErrNoKey)
	}
	k := h.s.keys
	id, err := h.s.rdb.Incr(ctx, k.HookSeq()).Result()
	if err != nil {
		return fmt.Errorf("assigning a hook id: %w", err)
	}
	if id > MaxHookID {
		return fmt.Errorf("hook ids are exhausted (%d > %d)", id, MaxHookID)
	}
	r.ID, r.Kind, r.Path, r.NamespaceID = id, ns.Kind, ns.Path, ns.ID
	raw, err := h.encode(r)
	if err != nil {
		return err
	}
	ok, err := createHookScript.Run(ctx, h.s.rdb,
		[]string{k.Hooks(), k.HookScope(ns.Kind, ns.Path), k.HooksVersion()},
		id, raw, limit).Int()
	if err != nil {
		return fmt.Errorf("creating hook %d: %w", id, err)
	}
	if ok == 0 {
		return ErrHookLimit
	}
	return nil
}

// belongs reports whether a stored hook is one of ns's.
func belongs(r *HookRecord, ns Namespace) bool {
	return r.Kind == ns.Kind && strings.EqualFold(r.Path, ns.Path)
}

// GetHook returns hook id of ns, or ErrHookNotFound.
func (h *HookStore) GetHook(ctx context.Context, ns Namespace, id int64) (*HookRecord, error) {
	r, _, err := h.get(ctx, ns, id)
	return r, err
}

func (h *HookStore) get(ctx context.Context, ns Namespace, id int64) (*HookRecord, string, error) {
	raw, err := h.s.rdb.HGet(ctx, h.s.keys.Hooks(), strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, "", ErrHookNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading hook %d: %w", id, err)
	}
	r, err := h.decode(id, raw)
	if err != nil {
		return nil, "", err
	}
	if !belongs(r, ns) {
		return nil, "", ErrHookNotFound
	}
	return r, raw, nil
}

// ListHooks returns the hooks of ns by ascending id.
func (h *HookStore) ListHooks(ctx context.Context, ns Namespace) ([]*HookRecord, error) {
	k := h.s.keys
	ids, err := h.s.rdb.SMembers(ctx, k.HookScope(ns.Kind, ns.Path)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing hooks of %s %q: %w", ns.Kind, ns.Path, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	raws, err := h.s.rdb.HMGet(ctx, k.Hooks(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading hooks of %s %q: %w", ns.Kind, ns.Path, err)
	}
	out := make([]*HookRecord, 0, len(ids))
	for i, v := range raws {
		raw, ok := v.(string)
		if !ok {
			continue // deleted between the two reads
		}
		id, err := strconv.ParseInt(ids[i], 10, 64)
		if err != nil {
			continue
		}
		r, err := h.decode(id, raw)
		if err != nil {
			return nil, err
		}
		if belongs(r, ns) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *HookRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

var updateHookScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
`)

// UpdateHook applies fn to hook id of ns and stores the result, retrying
// if another writer changed the hook in between. fn must not change the
// hook's id or owner; an error from fn is returned as is.
func (h *HookStore) UpdateHook(ctx context.Context, ns Namespace, id int64, fn func(*HookRecord) error) (*HookRecord, error) {
	k := h.s.keys
	for range 16 {
		r, old, err := h.get(ctx, ns, id)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		r.ID, r.Kind, r.Path, r.NamespaceID = id, ns.Kind, ns.Path, ns.ID
		if r.HasSecrets() && h.box == nil {
			return nil, fmt.Errorf("storing hook secrets: %w", secret.ErrNoKey)
		}
		// Keep the stored spelling of the owner's path.
		var st storedHook
		if json.Unmarshal([]byte(old), &st) == nil {
			r.Path, r.NamespaceID = st.Path, st.NamespaceID
		}
		raw, err := h.encode(r)
		if err != nil {
			return nil, err
		}
		res, err := updateHookScript.Run(ctx, h.s.rdb, []string{k.Hooks(), k.HooksVersion()}, id, old, raw).Int()
		if err != nil {
			return nil, fmt.Errorf("updating hook %d: %w", id, err)
		}
		switch res {
		case 1:
			return r, nil
		case -1:
			return nil, ErrHookNotFound
		}
	}
	return nil, ErrConflict
}

var deleteHookScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
return 1
`)

// DeleteHook removes hook id of ns, or returns ErrHookNotFound.
func (h *HookStore) DeleteHook(ctx context.Context, ns Namespace, id int64) error {
	raw, err := h.s.rdb.HGet(ctx, h.s.keys.Hooks(), strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return ErrHookNotFound
	}
	if err != nil {
		return fmt.Errorf("reading hook %d: %w", id, err)
	}
	var st storedHook
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return fmt.Errorf("decoding hook %d: %w", id, err)
	}
	if st.Kind != ns.Kind || !strings.EqualFold(st.Path, ns.Path) {
		return ErrHookNotFound
	}
	k := h.s.keys
	n, err := deleteHookScript.Run(ctx, h.s.rdb,
		[]string{k.Hooks(), k.HookScope(st.Kind, st.Path), k.HooksVersion()}, id).Int()
	if err != nil {
		return fmt.Errorf("deleting hook %d: %w", id, err)
	}
	if n == 0 {
		return ErrHookNotFound
	}
	return nil
}

// HooksVersion returns the change counter of the hooks; it grows with every
// create, update and delete.
func (h *HookStore) HooksVersion(ctx context.Context) (int64, error) {
	v, err := h.s.rdb.Get(ctx, h.s.keys.HooksVersion()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the hooks version: %w", err)
	}
	return v, nil
}

// LoadHooks reads every hook and the version they are at, in one
// transaction. A hook that cannot be decoded or opened fails the load: the
// caller keeps what it had rather than silently dropping hooks.
func (h *HookStore) LoadHooks(ctx context.Context) ([]*HookRecord, int64, error) {
	k := h.s.keys
	var all *redis.MapStringStringCmd
	var ver *redis.StringCmd
	_, err := h.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, k.Hooks())
		ver = p.Get(ctx, k.HooksVersion())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("loading hooks: %w", err)
	}
	version, err := ver.Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("loading the hooks version: %w", err)
	}
	out := make([]*HookRecord, 0, len(all.Val()))
	for f, raw := range all.Val() {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("hook field %q is not an id", f)
		}
		r, err := h.decode(id, raw)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *HookRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, version, nil
}
