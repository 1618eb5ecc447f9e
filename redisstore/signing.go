package redisstore

import (
	"fmt"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// sealSigning seals a hook's signing tokens into st, as the token is.
func (h *Hooks) sealSigning(r *HookRecord, st *storedHook) error {
	var err error
	if r.Signing.Current != "" {
		if st.SigningToken, err = h.box.Seal(r.Signing.Current, sealContext(r.ID, "signing_token", "")); err != nil {
			return fmt.Errorf("sealing the signing token of hook %d: %w", r.ID, err)
		}
	}
	if r.Signing.Previous != "" {
		if st.PreviousSigningToken, err = h.box.Seal(r.Signing.Previous, sealContext(r.ID, "previous_signing_token", "")); err != nil {
			return fmt.Errorf("sealing the previous signing token of hook %d: %w", r.ID, err)
		}
		until := r.Signing.PreviousUntil.UTC()
		st.PreviousSigningUntil = &until
	}
	return nil
}

// openSigning opens the signing tokens sealSigning stored.
func (h *Hooks) openSigning(id int64, st *storedHook) (gitlab.SigningTokens, error) {
	var s gitlab.SigningTokens
	var err error
	if st.SigningToken != "" {
		if s.Current, err = h.box.Open(st.SigningToken, sealContext(id, "signing_token", "")); err != nil {
			return s, fmt.Errorf("opening the signing token of hook %d: %w", id, err)
		}
	}
	if st.PreviousSigningToken != "" {
		if s.Previous, err = h.box.Open(st.PreviousSigningToken, sealContext(id, "previous_signing_token", "")); err != nil {
			return s, fmt.Errorf("opening the previous signing token of hook %d: %w", id, err)
		}
		if st.PreviousSigningUntil != nil {
			s.PreviousUntil = *st.PreviousSigningUntil
		}
	}
	return s, nil
}
