package module

import (
	"fmt"

	"github.com/grt-continuation/caddy-webhooks/secret"
)

// secretBox builds the cipher of the app's encryption_key; nil without a key.
func secretBox(key string) (*secret.Box, error) {
	if key == "" {
		return nil, nil
	}
	raw, err := secret.ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("encryption_key: %w", err)
	}
	box, err := secret.New(raw)
	if err != nil {
		return nil, fmt.Errorf("encryption_key: %w", err)
	}
	return box, nil
}
