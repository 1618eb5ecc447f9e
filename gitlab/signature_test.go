package gitlab

import (
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func verifier(t *testing.T, token string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(token)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// received is h as a receiver reads it: names canonicalized, as net/http
// does on the wire (Sign writes GitLab's lower-case names).
func received(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		for _, v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

func TestSigningTokenSignatureVerifies(t *testing.T) {
	tok, err := GenerateSigningToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSigningToken(tok); err != nil {
		t.Fatalf("generated token %q does not parse: %v", tok, err)
	}
	body := []byte(`{"object_kind":"push"}`)
	h := http.Header{}
	if err := (SigningTokens{Current: tok}).Sign(h, "idem-1", time.Now(), body); err != nil {
		t.Fatal(err)
	}
	if got := h[HeaderStdWebhookID]; len(got) != 1 || got[0] != "idem-1" {
		t.Fatalf("webhook-id = %v, want the idempotency key", got)
	}
	if err := verifier(t, tok).Verify(body, received(h)); err != nil {
		t.Fatalf("the Standard Webhooks library refuses the signature: %v", err)
	}
	if err := verifier(t, tok).Verify([]byte(`{"object_kind":"tag_push"}`), received(h)); err == nil {
		t.Fatal("a changed body still verifies")
	}
}

func TestSigningTokenRotationSignsWithBoth(t *testing.T) {
	old, _ := GenerateSigningToken()
	next, _ := GenerateSigningToken()
	now := time.Now()
	s := SigningTokens{Current: old}.Rotate(next, now, time.Hour)
	body := []byte(`{}`)
	h := http.Header{}
	if err := s.Sign(h, "id", now, body); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(received(h).Get(HeaderStdWebhookSignature))); n != 2 {
		t.Fatalf("%d signatures during the overlap, want 2", n)
	}
	for _, tok := range []string{old, next} {
		if err := verifier(t, tok).Verify(body, received(h)); err != nil {
			t.Fatalf("token %d of the rotation does not verify: %v", len(tok), err)
		}
	}
	// After the overlap only the new token signs.
	later := now.Add(time.Hour + time.Second)
	h = http.Header{}
	if err := s.Sign(h, "id", later, body); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(received(h).Get(HeaderStdWebhookSignature))); n != 1 {
		t.Fatalf("%d signatures after the overlap, want 1", n)
	}
	if err := verifier(t, next).VerifyIgnoringTimestamp(body, received(h)); err != nil {
		t.Fatal(err)
	}
	if err := verifier(t, old).VerifyIgnoringTimestamp(body, received(h)); err == nil {
		t.Fatal("the old token still verifies after the overlap")
	}
	if got := s.Rotate("", now, time.Hour); !got.IsZero() || got.Previous != "" {
		t.Fatalf("removing the token keeps %+v", got)
	}
}

func TestParseSigningTokenRefusesOtherForms(t *testing.T) {
	for _, s := range []string{
		"", "secret", "whsec_", "whsec_not base64!",
		"whsec_" + strings.Repeat("A", 40) + "==", // 31 bytes
		"WHSEC_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=",
	} {
		if _, err := ParseSigningToken(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := ParseSigningToken("whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="); err != nil {
		t.Errorf("GitLab's documented example refused: %v", err)
	}
}

func TestSignWithoutTokenSetsNothing(t *testing.T) {
	h := http.Header{}
	if err := (SigningTokens{}).Sign(h, "id", time.Now(), nil); err != nil || len(h) != 0 {
		t.Fatalf("headers %v, err %v", h, err)
	}
}
