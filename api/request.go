package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
	"github.com/grt-continuation/caddy-webhooks/secret"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// request is one API call being served.
type request struct {
	h      *Handler
	w      http.ResponseWriter
	r      *http.Request
	rt     route
	ns     webhook.Namespace
	method string
	hookID int64
	caller string // the principal's name, for rate limits
	scope  string // the principal's scope covering the path; "" for all
}

func (q *request) serve() {
	switch {
	case q.rt.rawHook == "" && q.method == http.MethodGet:
		q.list()
	case q.rt.rawHook == "" && q.method == http.MethodPost:
		q.create()
	case q.rt.sub == "" && q.method == http.MethodGet:
		q.get()
	case q.rt.sub == "" && q.method == http.MethodPut:
		q.update()
	case q.rt.sub == "" && q.method == http.MethodDelete:
		q.delete()
	case q.rt.sub == "test":
		q.test()
	case q.rt.sub == "events" && q.rt.rawKey == "":
		q.listEvents()
	case q.rt.sub == "events":
		q.getEvent()
	case q.rt.sub == "resend":
		q.resend()
	case q.rt.sub == "replay":
		q.replay()
	default:
		q.setSecretEntry()
	}
}

// params reads the request's parameters, answering the client itself when
// the body cannot be read.
func (q *request) params() (*params, bool) {
	p, err := readParams(q.r, q.h.opt.MaxBody)
	var be *bodyError
	switch {
	case errors.As(err, &be):
		if be.key == "message" {
			writeMessage(q.w, be.status, be.msg)
		} else {
			writeError(q.w, be.status, be.msg)
		}
		return nil, false
	case err != nil:
		q.h.internalError(q.w, "reading parameters", err)
		return nil, false
	}
	return p, true
}

// claimNamespace gives the route's project or group its id, if it has none
// yet, once a write is about to be stored: nothing is allocated for a
// request that fails. It has answered the request when it returns false.
func (q *request) claimNamespace() bool {
	if q.ns.ID != 0 {
		return true
	}
	ns, err := q.h.repo.ClaimNamespace(q.r.Context(), q.ns.Kind, q.ns.Path, q.scope, q.h.opt.MaxScopeNamespaces)
	switch {
	case errors.Is(err, redisstore.ErrNamespaceLimit):
		writeError(q.w, http.StatusUnprocessableEntity, fmt.Sprintf(
			"Maximum number of projects and groups with hooks under %s (%d) exceeded", q.scope, q.h.opt.MaxScopeNamespaces))
		return false
	case err != nil:
		q.h.internalError(q.w, "resolving a namespace path", err)
		return false
	}
	q.ns = ns
	return true
}

// changed puts a stored change into effect in this process at once (other
// processes poll); a failure only delays it.
func (q *request) changed() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.r.Context()), 2*time.Second)
	defer cancel()
	if err := q.h.rt.RefreshHooks(ctx); err != nil {
		q.h.log.Warn("hooks changed but not reloaded yet; the background reload will pick the change up", zap.Error(err))
	}
}

// storeError answers a repository error.
func (q *request) storeError(what string, err error) {
	switch {
	case errors.Is(err, redisstore.ErrHookNotFound):
		writeMessage(q.w, http.StatusNotFound, "404 Not found")
	case errors.Is(err, secret.ErrNoKey):
		q.h.log.Error("hook secrets cannot be stored or read: the webhooks app has no encryption_key", zap.String("op", what))
		writeMessage(q.w, http.StatusInternalServerError, "500 Internal Server Error")
	default:
		q.h.internalError(q.w, what, err)
	}
}

// internalError logs err (it carries no secret: stores wrap ids, never
// values) and answers 500.
func (h *Handler) internalError(w http.ResponseWriter, what string, err error) {
	h.log.Error("hooks API request failed", zap.String("op", what), zap.Error(err))
	writeMessage(w, http.StatusInternalServerError, "500 Internal Server Error")
}
