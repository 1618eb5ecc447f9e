package gitlab

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers, sent when a hook has a signing token (GitLab
// 19's signing_token). GitLab writes them in lower case, as the
// specification does.
const (
	HeaderStdWebhookID        = "webhook-id"
	HeaderStdWebhookTimestamp = "webhook-timestamp"
	HeaderStdWebhookSignature = "webhook-signature"
)

// SigningTokenPrefix starts every signing token: whsec_ and the base64 of
// the key, as the Standard Webhooks specification writes secrets.
const SigningTokenPrefix = "whsec_"

// signingKeyLen is the key length GitLab requires: 32 bytes.
const signingKeyLen = 32

// ErrSigningToken is the 422 for a signing token of the wrong form.
var ErrSigningToken = errors.New("signing token must be whsec_ followed by the base64 encoding of a 32-byte key")

// ParseSigningToken returns the key of a signing token: the base64-decoded
// bytes after whsec_, which must be 32 bytes as GitLab requires.
func ParseSigningToken(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SigningTokenPrefix)
	if !ok {
		return nil, ErrSigningToken
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) != signingKeyLen {
		return nil, ErrSigningToken
	}
	return key, nil
}

// GenerateSigningToken returns a new signing token: whsec_ and the base64
// of 32 random bytes, as GitLab documents generating one.
func GenerateSigningToken() (string, error) {
	key := make([]byte, signingKeyLen)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generating a signing token: %w", err)
	}
	return SigningTokenPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// SigningTokens are a hook's signing tokens: the current one and, while a
// rotation's overlap lasts, the one it replaced. Deliveries are signed with
// both until PreviousUntil, so receivers can move to the new token without
// refusing a delivery in between.
type SigningTokens struct {
	Current       string
	Previous      string
	PreviousUntil time.Time
}

// IsZero reports whether the hook signs nothing.
func (s SigningTokens) IsZero() bool { return s.Current == "" }

// Rotate returns the tokens after next is set at now: the current token
// signs beside next until now+overlap. An empty next removes signing at
// once, and setting the current token again changes nothing.
func (s SigningTokens) Rotate(next string, now time.Time, overlap time.Duration) SigningTokens {
	s = s.Expire(now)
	switch {
	case next == s.Current:
		return s
	case next == "" || s.Current == "" || overlap <= 0:
		return SigningTokens{Current: next}
	}
	return SigningTokens{Current: next, Previous: s.Current, PreviousUntil: now.Add(overlap).UTC()}
}

// Expire drops the previous token once its overlap has passed at now, so
// a secret that signs nothing is not kept.
func (s SigningTokens) Expire(now time.Time) SigningTokens {
	if s.Previous != "" && !now.Before(s.PreviousUntil) {
		s.Previous, s.PreviousUntil = "", time.Time{}
	}
	return s
}

// Active returns the tokens that sign at now, current first.
func (s SigningTokens) Active(now time.Time) []string {
	if s.Current == "" {
		return nil
	}
	if s.Previous != "" && now.Before(s.PreviousUntil) {
		return []string{s.Current, s.Previous}
	}
	return []string{s.Current}
}

// Sign sets the Standard Webhooks headers on h for body: webhook-id (the
// delivery's Idempotency-Key, as GitLab), webhook-timestamp (now, in
// seconds) and webhook-signature, one "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" per active token, separated by spaces as the
// specification allows. Without a token it sets nothing.
func (s SigningTokens) Sign(h http.Header, id string, now time.Time, body []byte) error {
	tokens := s.Active(now)
	if len(tokens) == 0 {
		return nil
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	sigs := make([]string, 0, len(tokens))
	for _, t := range tokens {
		key, err := ParseSigningToken(t)
		if err != nil {
			return fmt.Errorf("signing the delivery: %w", err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	set(h, HeaderStdWebhookID, id)
	set(h, HeaderStdWebhookTimestamp, ts)
	set(h, HeaderStdWebhookSignature, strings.Join(sigs, " "))
	return nil
}
