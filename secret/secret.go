// Package secret encrypts hook secrets (tokens, URL variable values, custom
// header values) for storage with AES-256-GCM. Each value is sealed with a
// fresh random nonce and bound to where it belongs (associated data such as
// "hook:42:token"), so a ciphertext copied into another hook or field does
// not decrypt.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key length: AES-256.
const KeySize = 32

// prefix marks the format of a sealed value, so a later format can coexist.
const prefix = "v1:"

// ErrNoKey is returned when a value must be sealed or opened but no key is
// configured.
var ErrNoKey = errors.New("no encryption key is configured")

// ErrDecrypt is returned when a value does not open with the key: another
// key, a damaged value, or a value moved to another field.
var ErrDecrypt = errors.New("stored secret does not decrypt with the configured key")

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) key of
// exactly 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("encryption key is %d bytes, want %d (generate one with: openssl rand -base64 32)", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("encryption key is not base64 (generate one with: openssl rand -base64 32)")
}

// Box seals and opens values with one key. A nil *Box has no key: Seal and
// Open fail with ErrNoKey.
type Box struct {
	aead cipher.AEAD
}

// New builds a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("building AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("building GCM: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to context. The result is printable.
func (b *Box) Seal(plaintext, context string) (string, error) {
	if b == nil {
		return "", ErrNoKey
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading random nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed with the same key and context.
func (b *Box) Open(sealed, context string) (string, error) {
	if b == nil {
		return "", ErrNoKey
	}
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrDecrypt
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", ErrDecrypt
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, data[:n], data[n:], []byte(context))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(plain), nil
}
