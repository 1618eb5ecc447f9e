package api

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
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
	if headers && utf8.RuneCountInString(key) > maxCustomHeaderNameLen {
		p.errs = append(p.errs, "key is too long")
	}
	if p.failed(q.w) {
		return
	}
	if !q.findWritable() {
		return
	}
	_, err = q.h.repo.UpdateHook(q.r.Context(), q.ns, q.hookID, func(r *webhook.HookRecord) error {
		oldURL, oldVars := r.URL, maps.Clone(r.URLVariables)
		m := &r.URLVariables
		if headers {
			m = &r.CustomHeaders
		}
		if q.method == http.MethodDelete {
			if _, ok := (*m)[key]; !ok {
				return errEntryMissing
			}
			delete(*m, key)
		} else {
			*m = merge(*m, map[string]string{key: value})
		}
		if headers {
			if q.method == http.MethodPut &&
				(len(r.CustomHeaders) > gitlab.MaxCustomHeaders || gitlab.ValidateCustomHeader(key, value) != nil) {
				return &validationError{msg: "Illegal key or value"}
			}
			return nil
		}
		// A variable can move the deliveries: reset as an edit does, and
		// check the URL it now makes as a save does.
		var g given
		if q.method == http.MethodPut {
			g.urlVariables = map[string]string{key: value}
		}
		resetSecrets(r, oldURL, oldVars, g)
		var ve *validationError
		if err := validate(q.r.Context(), r, q.ns, false, &q.h.opt.Network); errors.As(err, &ve) && ve.blocked {
			return err
		} else if err != nil {
			if q.method == http.MethodDelete {
				return &validationError{msg: "Could not unset variable"}
			}
			return &validationError{msg: "Illegal key or value"}
		}
		return nil
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
