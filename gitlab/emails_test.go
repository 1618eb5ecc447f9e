package gitlab

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestRedactEmails(t *testing.T) {
	in := `{"user_email":"john@example.com","commits":[{"author":{"name":"Jane","email":"jane.doe+ci@mail.example.org"}}],` +
		`"john@example.com":"key kept","message":"Signed-off-by: Jane <jane@example.com>","escaped":"bob\u0040example.com",` +
		`"not":["a@b","@example.com","x@-bad.com","x@bad-.com","x@a..b"],"n":1, "ws" : "ann@example.com" }`
	got := string(RedactEmails([]byte(in)))
	want := `{"user_email":"[REDACTED]","commits":[{"author":{"name":"Jane","email":"[REDACTED]"}}],` +
		`"john@example.com":"key kept","message":"Signed-off-by: Jane <jane@example.com>","escaped":"[REDACTED]",` +
		`"not":["[REDACTED]","@example.com","x@-bad.com","x@bad-.com","x@a..b"],"n":1, "ws" : "[REDACTED]" }`
	if got != want {
		t.Fatalf("RedactEmails =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("result is not valid JSON")
	}
	tricky := `{"q\"k":"a\"b@example.com","bs\\":"c@example.com","e":"d\\@example.com","t":"x@example.com\\"}`
	want = `{"q\"k":"a\"b@example.com","bs\\":"[REDACTED]","e":"d\\@example.com","t":"x@example.com\\"}`
	if got := string(RedactEmails([]byte(tricky))); got != want {
		t.Errorf("escapes: RedactEmails =\n%s\nwant\n%s", got, want)
	}
	plain := []byte(`{"object_kind":"push","ref":"refs/heads/main"}`)
	if out := RedactEmails(plain); &out[0] != &plain[0] {
		t.Error("a document without '@' was copied")
	}
}

func TestIsEmail(t *testing.T) {
	for _, s := range []string{"a@b", "john.smith@example.com", "o'brien+x@sub.example-host.co", "1@2.3"} {
		if !IsEmail(s) {
			t.Errorf("IsEmail(%q) = false", s)
		}
	}
	for _, s := range []string{"", "@", "a@", "@b", "a@b@c", "a b@c", "a@b.", "a@.b", "a@b_c", "é@x.com", "a@b\n",
		"a@" + strings.Repeat("x", 64)} {
		if IsEmail(s) {
			t.Errorf("IsEmail(%q) = true", s)
		}
	}
}

func BenchmarkRedactEmails(b *testing.B) {
	doc, err := os.ReadFile("../api/samples/push.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		RedactEmails(doc)
	}
}
