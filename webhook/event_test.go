package webhook

import (
	"errors"
	"testing"
	"time"
)

func TestNewEventValidates(t *testing.T) {
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)
	cases := []struct {
		name             string
		sig              Signals
		body             string
		wantReason       string
		wantProj, wantNS string
		wantRef          string
	}{
		{name: "push with full path", sig: Signals{Event: "push", Project: "acme/platform/api"}, body: string(body),
			wantProj: "acme/platform/api", wantNS: "acme/platform", wantRef: "refs/heads/main"},
		{name: "project joined to namespace", sig: Signals{Event: "Push Hook", Project: "api", Namespace: "acme/platform", Ref: "refs/heads/x"},
			body: string(body), wantProj: "acme/platform/api", wantNS: "acme/platform", wantRef: "refs/heads/x"},
		{name: "namespace given shorter than parent", sig: Signals{Event: "issues", Project: "acme/platform/api", Namespace: "acme"},
			body: `{}`, wantProj: "acme/platform/api", wantNS: "acme/platform"},
		{name: "member is a group event", sig: Signals{Event: "member", Namespace: "acme"}, body: `{"event_name":"user_add_to_group"}`, wantNS: "acme"},
		{name: "unknown trigger", sig: Signals{Event: "deploy-ish", Project: "a/b"}, body: `{}`, wantReason: RejectTrigger},
		{name: "no project", sig: Signals{Event: "issues"}, body: `{}`, wantReason: RejectScope},
		{name: "project without namespace", sig: Signals{Event: "issues", Project: "api"}, body: `{}`, wantReason: RejectScope},
		{name: "project outside namespace", sig: Signals{Event: "issues", Project: "other/api", Namespace: "acme"}, body: `{}`, wantReason: RejectScope},
		{name: "path traversal", sig: Signals{Event: "issues", Project: "acme/../etc"}, body: `{}`, wantReason: RejectScope},
		{name: "group event without group", sig: Signals{Event: "member", Project: "acme/api"}, body: `{}`, wantReason: RejectScope},
		{name: "push without ref", sig: Signals{Event: "push", Project: "acme/api"}, body: `{"object_kind":"push"}`, wantReason: RejectRef},
		{name: "not json", sig: Signals{Event: "issues", Project: "acme/api"}, body: `<html>`, wantReason: RejectPayload},
		{name: "json array", sig: Signals{Event: "issues", Project: "acme/api"}, body: `[1]`, wantReason: RejectPayload},
		{name: "truncated json", sig: Signals{Event: "issues", Project: "acme/api"}, body: `{"a":`, wantReason: RejectPayload},
		{name: "empty body", sig: Signals{Event: "issues", Project: "acme/api"}, body: ``, wantReason: RejectPayload},
		// Valid JSON to encoding/json, not to GitLab's receivers.
		{name: "invalid UTF-8", sig: Signals{Event: "issues", Project: "acme/api"}, body: "{\"title\":\"caf\xe9\"}", wantReason: RejectPayload},
		{name: "lone surrogate escape", sig: Signals{Event: "issues", Project: "acme/api"}, body: `{"title":"\ud800"}`, wantReason: RejectPayload},
		{name: "escaped surrogate pair", sig: Signals{Event: "issues", Project: "acme/api"}, body: `{"title":"\ud83d\ude00 caf\u00e9 \\ud800"}`, wantProj: "acme/api", wantNS: "acme"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := NewEvent(c.sig, []byte(c.body), "", time.Now())
			if c.wantReason != "" {
				var rej *RejectError
				if !errors.As(err, &rej) || rej.Reason != c.wantReason {
					t.Fatalf("err = %v, want reason %s", err, c.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Project != c.wantProj || ev.Namespace != c.wantNS || ev.Ref != c.wantRef {
				t.Fatalf("got project %q ns %q ref %q", ev.Project, ev.Namespace, ev.Ref)
			}
			if ev.ID == "" || ev.Chain != ev.ID {
				t.Fatalf("id %q chain %q: a new chain starts at the event", ev.ID, ev.Chain)
			}
		})
	}
}

func TestNewEventInheritsChain(t *testing.T) {
	const chain = "0b9a1b8e-5b0c-4a57-9d3c-0c7b8f2e9a11"
	ev, err := NewEvent(Signals{Event: "issues", Project: "acme/api"}, []byte(`{}`), chain, time.Now())
	if err != nil || ev.Chain != chain || ev.ID == chain {
		t.Fatalf("chain %q id %q err %v", ev.Chain, ev.ID, err)
	}
	// Garbage in the header starts a new chain rather than propagating it.
	ev, _ = NewEvent(Signals{Event: "issues", Project: "acme/api"}, []byte(`{}`), "not-a-uuid\r\nX: y", time.Now())
	if ev.Chain != ev.ID {
		t.Fatalf("chain %q should be the event's own id", ev.Chain)
	}
}

func TestIdempotencyKeyStablePerEventAndHook(t *testing.T) {
	a, b := IdempotencyKey("ev1", 1), IdempotencyKey("ev1", 1)
	if a != b {
		t.Fatal("key changes between calls")
	}
	if a == IdempotencyKey("ev1", 2) || a == IdempotencyKey("ev2", 1) {
		t.Fatal("key does not depend on event and hook")
	}
}

func TestInvalidUnicode(t *testing.T) {
	for s, want := range map[string]int{
		`{"a":"plain é 😀"}`:     -1,
		`{"a":"\ud83d\ude00"}`:  -1,
		`{"a":"\\ud800"}`:       -1, // an escaped backslash, then text
		`{"a":"\u00e9\n\"\/"}`:  -1,
		"{\"a\":\"\xff\"}":      6,
		"{\"a\":\"ok\xc3\"}":    8,
		`{"a":"\ud800"}`:        6,
		`{"a":"\udc00\ud800"}`:  6,
		`{"a":"x\ud83d\u0041"}`: 7,
		`{"a":"\ud83d"}`:        6,
		`{"\ud83dkey":1}`:       2,
	} {
		if got := InvalidUnicode([]byte(s)); got != want {
			t.Errorf("InvalidUnicode(%q) = %d, want %d", s, got, want)
		}
	}
}
