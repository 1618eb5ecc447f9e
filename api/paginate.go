package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Pagination as GitLab's offset pagination: page (default 1), per_page
// (default 20, at most 100), and the X-Page, X-Per-Page, X-Total,
// X-Total-Pages, X-Next-Page, X-Prev-Page and Link headers.
const (
	defaultPerPage = 20
	maxPerPage     = 100
)

// paginate returns the bounds of the requested page of n items and writes
// the headers; ok is false after answering a bad parameter.
func (q *request) paginate(p *params, n int) (lo, hi int, ok bool) {
	page, hasPage := p.integer("page")
	per, hasPer := p.integer("per_page")
	if p.failed(q.w) {
		return 0, 0, false
	}
	if !hasPage || page < 1 {
		page = 1
	}
	if !hasPer || per < 1 {
		per = defaultPerPage
	}
	per = min(per, maxPerPage)
	pages := max((n+per-1)/per, 1)
	h := q.w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(n))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	next, prev := "", ""
	if page < pages {
		next = strconv.Itoa(page + 1)
	}
	if page > 1 {
		prev = strconv.Itoa(min(page-1, pages))
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	h.Set("Link", q.links(page, per, pages))
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)
	return lo, hi, true
}

func (q *request) links(page, per, pages int) string {
	u := *q.h.opt.RequestURL(q.r)
	if u.Host == "" {
		u.Host = q.r.Host
	}
	if u.Scheme == "" {
		u.Scheme = "http"
		if q.r.TLS != nil {
			u.Scheme = "https"
		}
	}
	link := func(n int, rel string) string {
		v := u.Query()
		v.Set("page", strconv.Itoa(n))
		v.Set("per_page", strconv.Itoa(per))
		w := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: v.Encode()}
		return "<" + w.String() + `>; rel="` + rel + `"`
	}
	var out []string
	if page > 1 {
		out = append(out, link(min(page-1, pages), "prev"))
	}
	if page < pages {
		out = append(out, link(page+1, "next"))
	}
	out = append(out, link(1, "first"), link(pages, "last"))
	return strings.Join(out, ", ")
}

var _ http.Handler = (*Handler)(nil)
