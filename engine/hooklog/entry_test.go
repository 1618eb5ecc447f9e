package hooklog

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// GitLab stores request_data with every e-mail address value replaced by
// [REDACTED]; a resend sends that stored payload.
func TestNewLogEntryRedactsEmails(t *testing.T) {
	h := &webhook.Hook{ID: 7, URL: "https://recv.example/x"}
	body := []byte(`{"user_email":"john@example.com","commits":[{"author":{"email":"jane@example.com"}}],"ref":"main"}`)
	e := NewEntry(KindDelivery, &Attempt{Hook: h, EventID: "ev1", Chain: "ch1", Trigger: "push", Payload: body, Status: 200}, 1<<10)
	want := `{"user_email":"[REDACTED]","commits":[{"author":{"email":"[REDACTED]"}}],"ref":"main"}`
	if string(e.RequestData) != want {
		t.Errorf("request_data = %s, want %s", e.RequestData, want)
	}
	if !strings.Contains(string(body), "john@example.com") {
		t.Error("the delivered payload was changed")
	}
}

func TestNewLogEntryRedactsAndCaps(t *testing.T) {
	const token, hdr, urlVar = "tok-SECRET-1234", "hdr-SECRET-5678", "var-SECRET-9abc"
	h := &webhook.Hook{ID: 7, URL: "https://user:pw@recv.example/{key}/x", URLVariables: map[string]string{"key": urlVar},
		Token: token, CustomHeaders: map[string]string{"X-Api-Key": hdr}}
	sent := http.Header{}
	sent.Set("X-Api-Key", hdr)
	sent["X-Gitlab-Token"] = []string{token}
	sent.Set("Idempotency-Key", "k1")
	resp := http.Header{}
	for i := range 60 {
		resp.Set(fmt.Sprintf("X-H%02d", i), "v")
	}
	resp.Set("X-Echo", "got "+urlVar+" and "+token+" and "+hdr)
	resp.Set("A-Long", strings.Repeat("é", 1000))
	// The body echoes the secrets, is over 8 KiB, and ends with the start
	// of a secret cut by the cap.
	body := []byte(token + " " + hdr + strings.Repeat("a", 8<<10-len(token)-len(hdr)-1-6) + token[:6])
	e := NewEntry(KindDelivery, &Attempt{Hook: h, EventID: "ev1", Chain: "ch1", Trigger: "push", Payload: []byte(`{"a":1}`),
		Status: 500, Header: resp, Body: body, Duration: 1500 * time.Millisecond, RequestHeader: sent}, 1<<10)

	if e.URL != "https://*****:*****@recv.example/{key}/x" {
		t.Errorf("url = %q", e.URL)
	}
	if e.RequestHeaders["X-Gitlab-Token"] != Redacted || e.RequestHeaders["X-Api-Key"] != Redacted || e.RequestHeaders["Idempotency-Key"] != "k1" {
		t.Errorf("request headers = %v", e.RequestHeaders)
	}
	if len(e.ResponseHeaders) != MaxResponseHeaders {
		t.Errorf("%d response headers kept, want %d", len(e.ResponseHeaders), MaxResponseHeaders)
	}
	if got := e.ResponseHeaders["X-Echo"]; got != "got {key} and [REDACTED] and [REDACTED]" {
		t.Errorf("X-Echo = %q", got)
	}
	if l := e.ResponseHeaders["A-Long"]; len(l) > MaxHeaderValue || !strings.HasPrefix(l, "é") {
		t.Errorf("A-Long kept %d bytes", len(l))
	}
	if len(e.ResponseBody) > MaxResponseBody || !strings.HasPrefix(e.ResponseBody, "[REDACTED] [REDACTED]") {
		t.Errorf("response body = %d bytes, starts %q", len(e.ResponseBody), e.ResponseBody[:30])
	}
	dump := fmt.Sprint(e)
	for _, s := range []string{token, hdr, urlVar, token[:6], "pw@"} {
		if strings.Contains(dump, s) {
			t.Errorf("log entry holds %q", s)
		}
	}
	if e.ResponseStatus != "500" || e.Duration != 1.5 || string(e.RequestData) != `{"a":1}` || e.Oversize {
		t.Errorf("entry = %+v", e)
	}

	// No response: "internal error" with the error text; a payload over
	// the cap is kept as {"oversize":true}.
	e = NewEntry(KindTest, &Attempt{Hook: h, EventID: "ev2", Chain: "ev2", Trigger: "push", Payload: []byte(`{"big":"` + strings.Repeat("x", 2000) + `"}`),
		Err: errors.New("request timed out"), Duration: time.Second}, 1<<10)
	if e.ResponseStatus != InternalErrorStatus || e.InternalError != "request timed out" || !e.Oversize ||
		string(e.RequestData) != `{"oversize":true}` || e.ResponseHeaders == nil {
		t.Errorf("failed entry = %+v", e)
	}
}
