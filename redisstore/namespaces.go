package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// NamespaceByPath returns the project or group with that full path, giving
// it the next numeric id the first time it is seen. Paths compare
// case-insensitively; the spelling first seen is kept.
func (h *Hooks) NamespaceByPath(ctx context.Context, kind webhook.Kind, path string) (webhook.Namespace, error) {
	return h.ClaimNamespace(ctx, kind, path, "", 0)
}

// ClaimNamespace is NamespaceByPath for a write made under a token scope:
// a path without an id gets one only while the scope has handed out fewer
// than limit (ErrNamespaceLimit otherwise). limit 0: no cap.
func (h *Hooks) ClaimNamespace(ctx context.Context, kind webhook.Kind, path, scope string, limit int) (webhook.Namespace, error) {
	k := h.keys
	if scope == "" {
		limit = 0
	}
	id, err := resolveNamespaceScript.run(ctx, h.rdb,
		[]string{k.NamespaceByPath(), k.NamespaceByID(), k.NamespaceSeq(), k.NamespaceScopeCount(scope)},
		string(kind)+":"+strings.ToLower(path), string(kind), path, limit).Int64()
	if err != nil {
		return webhook.Namespace{}, fmt.Errorf("resolving %s %q: %w", kind, path, err)
	}
	if id == 0 {
		return webhook.Namespace{}, ErrNamespaceLimit
	}
	ns := webhook.Namespace{Kind: kind, ID: id, Path: path}
	// The stored spelling wins over this request's.
	if stored, err := h.rdb.HGet(ctx, k.NamespaceByID(), string(kind)+":"+strconv.FormatInt(id, 10)).Result(); err == nil {
		ns.Path = stored
	}
	return ns, nil
}

// LookupNamespace returns the project or group with that full path if it
// has an id, without giving it one; ok is false if it never had.
func (h *Hooks) LookupNamespace(ctx context.Context, kind webhook.Kind, path string) (ns webhook.Namespace, ok bool, err error) {
	k := h.keys
	id, err := h.rdb.HGet(ctx, k.NamespaceByPath(), string(kind)+":"+strings.ToLower(path)).Int64()
	if errors.Is(err, redis.Nil) {
		return webhook.Namespace{}, false, nil
	}
	if err != nil {
		return webhook.Namespace{}, false, fmt.Errorf("looking up %s %q: %w", kind, path, err)
	}
	ns, ok, err = h.NamespaceByID(ctx, kind, id)
	if err != nil || !ok {
		return webhook.Namespace{}, false, err
	}
	return ns, true, nil
}

// NamespaceByID returns the project or group with that numeric id; ok is
// false if no path was ever given that id.
func (h *Hooks) NamespaceByID(ctx context.Context, kind webhook.Kind, id int64) (ns webhook.Namespace, ok bool, err error) {
	path, err := h.rdb.HGet(ctx, h.keys.NamespaceByID(), string(kind)+":"+strconv.FormatInt(id, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return webhook.Namespace{}, false, nil
	}
	if err != nil {
		return webhook.Namespace{}, false, fmt.Errorf("looking up %s id %d: %w", kind, id, err)
	}
	return webhook.Namespace{Kind: kind, ID: id, Path: path}, true, nil
}
