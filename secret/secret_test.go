package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newBox(t *testing.T) (*Box, string) {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b, base64.StdEncoding.EncodeToString(key)
}

func TestSealOpenRoundTrip(t *testing.T) {
	b, _ := newBox(t)
	s1, err := b.Seal("s3cr3t-token", "hook:1:token")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.Seal("s3cr3t-token", "hook:1:token")
	if s1 == s2 {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}
	if strings.Contains(s1, "s3cr3t") {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := b.Open(s1, "hook:1:token")
	if err != nil || got != "s3cr3t-token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestOpenRejectsWrongContextKeyOrDamage(t *testing.T) {
	b, _ := newBox(t)
	other, _ := newBox(t)
	s, _ := b.Seal("v", "hook:1:token")
	cases := map[string]func() (string, error){
		"other context": func() (string, error) { return b.Open(s, "hook:2:token") },
		"other key":     func() (string, error) { return other.Open(s, "hook:1:token") },
		"damaged":       func() (string, error) { return b.Open(s[:len(s)-2]+"AA", "hook:1:token") },
		"no prefix":     func() (string, error) { return b.Open(strings.TrimPrefix(s, prefix), "hook:1:token") },
		"short":         func() (string, error) { return b.Open(prefix+"AAAA", "hook:1:token") },
	}
	for name, open := range cases {
		if _, err := open(); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: err = %v, want ErrDecrypt", name, err)
		}
	}
	var none *Box
	if _, err := none.Seal("v", "c"); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil box Seal err = %v", err)
	}
	if _, err := none.Open(s, "c"); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil box Open err = %v", err)
	}
}

func TestParseKey(t *testing.T) {
	_, enc := newBox(t)
	k, err := ParseKey(enc)
	if err != nil || len(k) != KeySize {
		t.Fatalf("ParseKey = %d bytes, %v", len(k), err)
	}
	raw := strings.TrimRight(enc, "=")
	k2, err := ParseKey(raw)
	if err != nil || !bytes.Equal(k, k2) {
		t.Fatalf("unpadded key: %v", err)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
