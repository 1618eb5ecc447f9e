package api

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// errEntryMissing: DELETE of a URL variable or custom header the hook lacks.
var errEntryMissing = errors.New("entry not found")

// setSecretEntry serves PUT and DELETE of …/url_variables/:key and
// …/custom_headers/:key.
func (q *request) setSecretEntry() {
	headers := q.rt.sub == "custom_headers"
	key, err := url.PathUnescape(q.rt.rawKey)
	if err != nil {
		writeError(q.w, http.StatusBadRequest, "key is invalid")
		return
	}
	p, ok := q.params()
	if !ok {
		return
	}
	var value string
	if q.method == http.MethodPut {
		var has bool
		value, has = p.str("value")
		if !has && len(p.errs) == 0 {
			p.errs = append(p.errs, "value is missing")
		}
	}
	if headers && len(key) > maxCustomHeaderNameLen {
		p.errs = append(p.errs, "key is too long")
	}
	if p.failed(q.w) {
		return
	}
	if !q.findWritable() {
		return
	}
	_, err = q.h.repo.UpdateHook(q.r.Context(), q.ns, q.hookID, func(r *redisstore.HookRecord) error {
		m := &r.URLVariables
		if headers {
			m = &r.CustomHeaders
		}
		if q.method == http.MethodDelete {
			if _, ok := (*m)[key]; !ok {
				return errEntryMissing
			}
			delete(*m, key)
			if headers {
				return nil
			}
			return blockedURL(r, &q.h.opt.Network)
		}
		*m = merge(*m, map[string]string{key: value})
		if headers {
			if len(r.CustomHeaders) > gitlab.MaxCustomHeaders || gitlab.ValidateCustomHeader(key, value) != nil {
				return &validationError{"Illegal key or value"}
			}
			return nil
		}
		if gitlab.ValidateURLVariables(r.URLVariables) != nil {
			return &validationError{"Illegal key or value"}
		}
		return blockedURL(r, &q.h.opt.Network)
	})
	var ve *validationError
	switch {
	case errors.Is(err, errEntryMissing):
		if headers {
			writeMessage(q.w, http.StatusNotFound, "404 Custom header Not Found")
		} else {
			writeMessage(q.w, http.StatusNotFound, "404 URL variable Not Found")
		}
	case errors.As(err, &ve):
		writeError(q.w, http.StatusUnprocessableEntity, ve.msg)
	case err != nil:
		q.storeError("setting a hook "+q.rt.sub+" entry", err)
	default:
		q.changed()
		q.w.WriteHeader(http.StatusNoContent)
	}
}

// maxCustomHeaderNameLen bounds a custom header name given in the path.
const maxCustomHeaderNameLen = 255
