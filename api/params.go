package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// params are a request's parameters, as Grape merges them: the query
// string, then a JSON object, form or multipart body. Undeclared names are
// ignored, as GitLab does.
type params struct {
	m    map[string]any
	errs []string
}

// errBodyTooLarge and friends end a request before any parameter is read.
type bodyError struct {
	status int
	key    string // "error" or "message"
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

func readParams(r *http.Request, maxBody int64) (*params, error) {
	p := &params{m: map[string]any{}}
	for k, v := range r.URL.Query() {
		p.m[strings.TrimSuffix(k, "[]")] = v[len(v)-1]
	}
	if r.Body == nil || r.Body == http.NoBody {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &bodyError{http.StatusRequestEntityTooLarge, "message", "413 Request Entity Too Large"}
		}
		return nil, &bodyError{http.StatusBadRequest, "error", "could not read the request body"}
	}
	if int64(len(body)) > maxBody {
		return nil, &bodyError{http.StatusRequestEntityTooLarge, "message", "413 Request Entity Too Large"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, mparams, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
			return nil, &bodyError{http.StatusBadRequest, "error", "message body does not match declared format"}
		}
		for k, v := range obj {
			p.m[k] = v
		}
	case mt == "application/x-www-form-urlencoded" || mt == "":
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r2.Form, r2.PostForm = nil, nil
		if err := r2.ParseForm(); err != nil {
			return nil, &bodyError{http.StatusBadRequest, "error", "message body does not match declared format"}
		}
		for k, v := range r2.PostForm {
			p.m[strings.TrimSuffix(k, "[]")] = v[len(v)-1]
		}
	case mt == "multipart/form-data":
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
		if mparams["boundary"] == "" || r2.ParseMultipartForm(maxBody) != nil {
			return nil, &bodyError{http.StatusBadRequest, "error", "message body does not match declared format"}
		}
		for k, v := range r2.MultipartForm.Value {
			p.m[strings.TrimSuffix(k, "[]")] = v[len(v)-1]
		}
	default:
		return nil, &bodyError{http.StatusUnsupportedMediaType, "error",
			fmt.Sprintf("The provided content-type '%s' is not supported.", mt)}
	}
	return p, nil
}

func (p *params) has(name string) bool {
	v, ok := p.m[name]
	return ok && v != nil
}

func (p *params) invalid(name string) { p.errs = append(p.errs, name+" is invalid") }

// str reads a String parameter: a string, or a number as its text.
func (p *params) str(name string) (string, bool) {
	v, ok := p.m[name]
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	}
	p.invalid(name)
	return "", false
}

// boolean reads a Boolean parameter with Grape's coercions.
func (p *params) boolean(name string) (bool, bool) {
	v, ok := p.m[name]
	if !ok || v == nil {
		return false, false
	}
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		switch strings.ToLower(t) {
		case "true", "t", "1", "yes", "y", "on":
			return true, true
		case "false", "f", "0", "no", "n", "off":
			return false, true
		}
	case json.Number:
		switch t.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	}
	p.invalid(name)
	return false, false
}

// integer reads an Integer parameter.
func (p *params) integer(name string) (int, bool) {
	v, ok := p.m[name]
	if !ok || v == nil {
		return 0, false
	}
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = t.String()
	default:
		p.invalid(name)
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		p.invalid(name)
		return 0, false
	}
	return n, true
}

// pairs reads an Array of {key, value} objects (url_variables,
// custom_headers). Only a JSON body can carry one.
func (p *params) pairs(name string) (map[string]string, bool) {
	v, ok := p.m[name]
	if !ok || v == nil {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		p.invalid(name)
		return nil, false
	}
	out := make(map[string]string, len(arr))
	for i, e := range arr {
		obj, ok := e.(map[string]any)
		if !ok {
			p.invalid(fmt.Sprintf("%s[%d]", name, i))
			continue
		}
		var kv [2]string
		bad := false
		for j, f := range []string{"key", "value"} {
			field := fmt.Sprintf("%s[%d][%s]", name, i, f)
			switch s := obj[f].(type) {
			case nil:
				p.errs = append(p.errs, field+" is missing")
				bad = true
			case string:
				kv[j] = s
			case json.Number:
				kv[j] = s.String()
			default:
				p.invalid(field)
				bad = true
			}
		}
		if !bad {
			out[kv[0]] = kv[1]
		}
	}
	return out, true
}

// words reads an Array of strings or numbers (a JSON array, or one
// string of words separated by spaces or commas, as a form or query
// carries it).
func (p *params) words(name string) ([]string, bool) {
	v, ok := p.m[name]
	if !ok || v == nil {
		return nil, false
	}
	switch t := v.(type) {
	case string:
		return strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == ',' }), true
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			switch w := e.(type) {
			case string:
				out = append(out, w)
			case json.Number:
				out = append(out, w.String()+"s") // a number is seconds
			default:
				p.invalid(fmt.Sprintf("%s[%d]", name, i))
				return nil, false
			}
		}
		return out, true
	}
	p.invalid(name)
	return nil, false
}

// failed writes the collected parameter errors, Grape style.
func (p *params) failed(w http.ResponseWriter) bool {
	if len(p.errs) == 0 {
		return false
	}
	writeError(w, http.StatusBadRequest, strings.Join(p.errs, ", "))
	return true
}
