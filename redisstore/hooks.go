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

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

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

// Hooks keeps API-managed hooks in Redis, secrets sealed with box.
type Hooks struct {
	*conn
	box *secret.Box
}

// CreateHook stores a new hook for ns and sets r.ID, r.Kind, r.Path and
// r.NamespaceID. limit caps the hooks of ns (0: no cap); reaching it gives
// ErrHookLimit.
func (h *Hooks) CreateHook(ctx context.Context, ns webhook.Namespace, r *webhook.HookRecord, limit int) error {
	if r.HasSecrets() && h.box == nil {
		return fmt.Errorf("storing hook secrets: %w", secret.ErrNoKey)
	}
	k := h.keys
	id, err := h.rdb.Incr(ctx, k.HookSeq()).Result()
	if err != nil {
		return fmt.Errorf("assigning a hook id: %w", err)
	}
	if id > webhook.MaxHookID {
		return fmt.Errorf("hook ids are exhausted (%d > %d)", id, webhook.MaxHookID)
	}
	r.ID, r.Kind, r.Path, r.NamespaceID = id, ns.Kind, ns.Path, ns.ID
	raw, err := h.encode(r)
	if err != nil {
		return err
	}
	ok, err := createHookScript.run(ctx, h.rdb,
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
func belongs(r *webhook.HookRecord, ns webhook.Namespace) bool {
	return r.Kind == ns.Kind && strings.EqualFold(r.Path, ns.Path)
}

// GetHook returns hook id of ns, or ErrHookNotFound.
func (h *Hooks) GetHook(ctx context.Context, ns webhook.Namespace, id int64) (*webhook.HookRecord, error) {
	r, _, err := h.get(ctx, ns, id)
	return r, err
}

func (h *Hooks) get(ctx context.Context, ns webhook.Namespace, id int64) (*webhook.HookRecord, string, error) {
	raw, err := h.rdb.HGet(ctx, h.keys.Hooks(), strconv.FormatInt(id, 10)).Result()
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
func (h *Hooks) ListHooks(ctx context.Context, ns webhook.Namespace) ([]*webhook.HookRecord, error) {
	k := h.keys
	ids, err := h.rdb.SMembers(ctx, k.HookScope(ns.Kind, ns.Path)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing hooks of %s %q: %w", ns.Kind, ns.Path, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	raws, err := h.rdb.HMGet(ctx, k.Hooks(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading hooks of %s %q: %w", ns.Kind, ns.Path, err)
	}
	out := make([]*webhook.HookRecord, 0, len(ids))
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
	slices.SortFunc(out, func(a, b *webhook.HookRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpdateHook applies fn to hook id of ns and stores the result, retrying
// if another writer changed the hook in between. fn must not change the
// hook's id or owner; an error from fn is returned as is.
func (h *Hooks) UpdateHook(ctx context.Context, ns webhook.Namespace, id int64, fn func(*webhook.HookRecord) error) (*webhook.HookRecord, error) {
	k := h.keys
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
		res, err := updateHookScript.run(ctx, h.rdb, []string{k.Hooks(), k.HooksVersion()}, id, old, raw).Int()
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

// DeleteHook removes hook id of ns, or returns ErrHookNotFound.
func (h *Hooks) DeleteHook(ctx context.Context, ns webhook.Namespace, id int64) error {
	raw, err := h.rdb.HGet(ctx, h.keys.Hooks(), strconv.FormatInt(id, 10)).Result()
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
	k := h.keys
	n, err := deleteHookScript.run(ctx, h.rdb,
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
func (h *Hooks) HooksVersion(ctx context.Context) (int64, error) {
	v, err := h.rdb.Get(ctx, h.keys.HooksVersion()).Int64()
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
func (h *Hooks) LoadHooks(ctx context.Context) ([]*webhook.HookRecord, int64, error) {
	k := h.keys
	var all *redis.MapStringStringCmd
	var ver *redis.StringCmd
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
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
	out := make([]*webhook.HookRecord, 0, len(all.Val()))
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
	slices.SortFunc(out, func(a, b *webhook.HookRecord) int { return cmp.Compare(a.ID, b.ID) })
	return out, version, nil
}
