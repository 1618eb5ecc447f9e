package hooklog

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// The secrets of one hook, with characters that percent-encoding and JSON
// escaping change.
const (
	maskUser     = "alice"
	maskPassword = `pa ss/wörd"<`
	maskQuery    = "Q+SECRET/1"
	maskVar      = "VAR-SECRET-1"
	maskToken    = "TOKEN-SECRET-2"
)

func maskedHook() *webhook.Hook {
	return &webhook.Hook{ID: 9,
		URL: "http://" + url.UserPassword(maskUser, maskPassword).String() + "@recv.example/{p}?key=" +
			url.QueryEscape(maskQuery) + "&page=1&empty=",
		URLVariables: map[string]string{"p": maskVar}, Token: maskToken}
}

func jsonString(s string, html bool) string { return jsonEscape(s, html) }

// A receiver that echoes the request (its URL, its Authorization header,
// what it parsed of them) gets every secret masked wherever its answer is
// shown: the log's response body, headers and internal error, and the
// test endpoint's answer (MaskBody, MaskSecrets), in every spelling.
func TestMaskerMasksEchoedURLCredentials(t *testing.T) {
	h := maskedHook()
	basic := base64.StdEncoding.EncodeToString([]byte(maskUser + ":" + maskPassword))
	sentURL := strings.Replace(h.URL, "{p}", maskVar, 1)
	cases := []struct {
		name, echo string
		leaks      []string // what must not be left
		kept       string   // what must be left
	}{
		{"URL as sent", "POST " + sentURL, []string{maskUser + ":", "pa%20ss", "Q%2BSECRET", maskVar}, "page=*****"},
		{"Authorization header", "Authorization: Basic " + basic, []string{basic}, "Basic *****"},
		{"Basic in PHP's JSON", `{"authorization":"Basic ` + strings.ReplaceAll(basic, "/", `\/`) + `"}`, []string{basic[:8]}, "Basic *****"},
		{"password decoded", "password=" + maskPassword, []string{maskPassword}, "password=*****"},
		{"password in Go's JSON", `{"password":"` + jsonString(maskPassword, true) + `"}`, []string{jsonString(maskPassword, true)}, `"password":"*****"`},
		{"password in JavaScript's JSON", `{"password":"` + jsonString(maskPassword, false) + `"}`, []string{jsonString(maskPassword, false)}, `"password":"*****"`},
		{"password in PHP's JSON", `{"password":"` + strings.ReplaceAll(jsonString(maskPassword, false), "/", `\/`) + `"}`, []string{`pa ss\/w`}, `"password":"*****"`},
		{"password query-escaped", "pw=" + url.QueryEscape(maskPassword), []string{url.QueryEscape(maskPassword)}, "pw=*****"},
		{"password path-escaped", "/" + url.PathEscape(maskPassword), []string{url.PathEscape(maskPassword)}, "/*****"},
		{"user info decoded", "user=" + maskUser + ":" + maskPassword, []string{maskPassword}, "user=*****:*****"},
		{"query value decoded", `{"key":"` + maskQuery + `"}`, []string{maskQuery}, `{"key":"*****"}`},
		{"query value in PHP's JSON", `{"key":"Q+SECRET\/1"}`, []string{`Q+SECRET\/1`}, `{"key":"*****"}`},
		{"query value path-escaped", "/" + url.PathEscape(maskQuery), []string{"Q+SECRET%2F1"}, "/*****"},
		{"query pair raw", "?key=" + url.QueryEscape(maskQuery), []string{"Q%2BSECRET"}, "?key=*****"},
		{"URL variable percent-encoded", "v=" + url.QueryEscape(maskVar), []string{maskVar}, "v={p}"},
		{"token in JSON", `{"token":"` + maskToken + `"}`, []string{maskToken}, `{"token":"[REDACTED]"}`},
		// A short query value is masked in its pair, not on its own.
		{"short value alone", `{"page":1,"count":"1"}`, nil, `{"page":1,"count":"1"}`},
	}
	for _, c := range cases {
		res := &Attempt{Hook: h, EventID: "ev", Chain: "ev", Trigger: "push", Payload: []byte(`{}`),
			Status: 422, Body: []byte(c.echo), Header: http.Header{"X-Echo": {c.echo}}, Err: errors.New("echo: " + c.echo)}
		e := NewEntry(KindTest, res, 1<<10)
		for where, got := range map[string]string{
			"response body": e.ResponseBody, "response header": e.ResponseHeaders["X-Echo"],
			"internal error": e.InternalError, "test answer (MaskBody)": MaskBody(h, res.Body),
			"MaskSecrets": MaskSecrets(h, c.echo),
		} {
			for _, leak := range c.leaks {
				if strings.Contains(got, leak) {
					t.Errorf("%s: %s = %q holds %q", c.name, where, got, leak)
				}
			}
			if !strings.Contains(got, c.kept) {
				t.Errorf("%s: %s = %q, want it to hold %q", c.name, where, got, c.kept)
			}
		}
	}
}

// A user name alone is the credential (a token as user name): masked on
// its own, and in the Basic credentials net/http derives from it.
func TestMaskerMasksAUserNameAlone(t *testing.T) {
	h := &webhook.Hook{URL: "https://ghp_TOKENASUSER@recv.example/x"}
	basic := base64.StdEncoding.EncodeToString([]byte("ghp_TOKENASUSER:"))
	got := MaskSecrets(h, "url https://ghp_TOKENASUSER@recv.example/x auth Basic "+basic)
	if got != "url https://*****@recv.example/x auth Basic *****" {
		t.Fatalf("masked %q", got)
	}
	// Parts written with URL variables are masked as the variables.
	h = &webhook.Hook{URL: "https://{u}:{pw}@recv.example/x", URLVariables: map[string]string{"u": "bob", "pw": "VARPASS"}}
	basic = base64.StdEncoding.EncodeToString([]byte("bob:VARPASS"))
	if got := MaskSecrets(h, "bob:VARPASS / Basic "+basic); got != "{u}:{pw} / Basic *****" {
		t.Fatalf("masked %q", got)
	}
}

// Authorization and Cookie may be custom headers (receivers take
// credentials in them): their values are [REDACTED] in the log's request
// headers and wherever an answer echoes them.
func TestCredentialCustomHeadersAreMasked(t *testing.T) {
	h := &webhook.Hook{URL: "https://recv.example/x",
		CustomHeaders: map[string]string{"Authorization": "Bearer CRED-SECRET-1", "Cookie": "session=CRED-SECRET-2"}}
	sent := http.Header{}
	for k, v := range h.CustomHeaders {
		sent.Set(k, v)
	}
	echo := `{"headers":{"authorization":"Bearer CRED-SECRET-1","cookie":"session=CRED-SECRET-2"}}`
	e := NewEntry(KindDelivery, &Attempt{Hook: h, EventID: "ev", Chain: "ev", Trigger: "push", Payload: []byte(`{}`),
		Status: 401, Body: []byte(echo), RequestHeader: sent}, 1<<10)
	if e.RequestHeaders["Authorization"] != Redacted || e.RequestHeaders["Cookie"] != Redacted {
		t.Errorf("request headers = %v", e.RequestHeaders)
	}
	if want := `{"headers":{"authorization":"[REDACTED]","cookie":"[REDACTED]"}}`; e.ResponseBody != want {
		t.Errorf("response body = %s, want %s", e.ResponseBody, want)
	}
}
