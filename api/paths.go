package api

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// pathSegment is GitLab's rule for one component of a group or project path.
var pathSegment = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*$`)

// maxPathLen bounds a full path.
const maxPathLen = 1024

// validPath checks a full path ("acme/platform/api"): no empty, "." or ".."
// components, only GitLab's path characters.
func validPath(p string) bool {
	if p == "" || len(p) > maxPathLen {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || !pathSegment.MatchString(seg) {
			return false
		}
	}
	return true
}

func notFoundMessage(kind webhook.Kind) string {
	if kind == webhook.KindGroup {
		return "404 Group Not Found"
	}
	return "404 Project Not Found"
}

// namespace resolves :id, a numeric id or a URL-encoded full path, and
// checks the principal's scope. A path gets its numeric id when a write
// to it is stored (claimNamespace), or, for a path with configured hooks,
// on first use; nothing else allocates: a path never written is a
// project or group with no stored hooks (id 0 until then), whatever a
// refused request did.
func (h *Handler) namespace(w http.ResponseWriter, r *http.Request, rt route, p *principal) (webhook.Namespace, bool) {
	raw, err := url.PathUnescape(rt.rawID)
	if err != nil || raw == "" {
		writeMessage(w, http.StatusNotFound, notFoundMessage(rt.kind))
		return webhook.Namespace{}, false
	}
	ctx := r.Context()
	if strings.TrimLeft(raw, "0123456789") == "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			writeMessage(w, http.StatusNotFound, notFoundMessage(rt.kind))
			return webhook.Namespace{}, false
		}
		ns, ok, err := h.repo.NamespaceByID(ctx, rt.kind, id)
		if err != nil {
			h.internalError(w, "resolving a namespace id", err)
			return webhook.Namespace{}, false
		}
		if !ok {
			writeMessage(w, http.StatusNotFound, notFoundMessage(rt.kind))
			return webhook.Namespace{}, false
		}
		if !p.may(ns.Path) {
			writeMessage(w, http.StatusForbidden, "403 Forbidden")
			return webhook.Namespace{}, false
		}
		return ns, true
	}
	if !validPath(raw) {
		writeMessage(w, http.StatusNotFound, notFoundMessage(rt.kind))
		return webhook.Namespace{}, false
	}
	if !p.may(raw) {
		writeMessage(w, http.StatusForbidden, "403 Forbidden")
		return webhook.Namespace{}, false
	}
	// A path with hooks in the configuration was written by the operator:
	// it gets its id like one written through the API, and the number of
	// such paths is bounded by the configuration.
	if len(h.configHooks(webhook.Namespace{Kind: rt.kind, Path: raw})) == 0 {
		ns, ok, err := h.repo.LookupNamespace(ctx, rt.kind, raw)
		if err != nil {
			h.internalError(w, "looking up a namespace path", err)
			return webhook.Namespace{}, false
		}
		if !ok {
			ns = webhook.Namespace{Kind: rt.kind, Path: raw}
		}
		return ns, true
	}
	ns, err := h.repo.NamespaceByPath(ctx, rt.kind, raw)
	if err != nil {
		h.internalError(w, "resolving a namespace path", err)
		return webhook.Namespace{}, false
	}
	return ns, true
}
