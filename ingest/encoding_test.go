package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/codingtest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

const pushBody = `{"object_kind":"push","ref":"refs/heads/main","commits":[]}`

func rejectReason(err error) string {
	var rej *webhook.RejectError
	if errors.As(err, &rej) {
		return rej.Reason
	}
	return ""
}

func TestDecodeEveryEncoding(t *testing.T) {
	for _, tc := range []struct{ header, coder string }{
		{"gzip", "gzip"}, {"x-gzip", "gzip"}, {"deflate", "deflate"}, {"deflate", "raw-deflate"},
		{"br", "br"}, {"zstd", "zstd"}, {" ZSTD ", "zstd"}, {"identity", ""}, {"", ""},
	} {
		body := []byte(pushBody)
		if tc.coder != "" {
			body = codingtest.Encode(t, tc.coder, body)
		}
		got, err := Decode(tc.header, body, 1<<20)
		if err != nil || string(got) != pushBody {
			t.Errorf("%q (%s): %q, %v", tc.header, tc.coder, got, err)
		}
	}
	// A list is undone last coding first.
	stacked := codingtest.Encode(t, "br", codingtest.Encode(t, "gzip", []byte(pushBody)))
	if got, err := Decode("gzip, br", stacked, 1<<20); err != nil || string(got) != pushBody {
		t.Errorf("gzip, br: %q, %v", got, err)
	}
	if _, err := Decode("gzip, gzip, gzip", stacked, 1<<20); rejectReason(err) != webhook.RejectEncoding {
		t.Errorf("three codings: %v, want %s", err, webhook.RejectEncoding)
	}
	if _, err := Decode("compress", []byte{1}, 1<<20); rejectReason(err) != webhook.RejectEncoding {
		t.Errorf("compress: %v, want %s", err, webhook.RejectEncoding)
	}
	if _, err := Decode("br", []byte("not brotli at all"), 1<<20); rejectReason(err) != webhook.RejectPayload {
		t.Errorf("corrupt br: %v, want %s", err, webhook.RejectPayload)
	}
}

// A bomb (a small body inflating past the limit) is refused as too large
// in every coding, having read no more than the limit.
func TestDecodeRefusesBombs(t *testing.T) {
	const limit = 64 << 10
	bomb := append([]byte(`{"x":"`), bytes.Repeat([]byte("A"), 1<<20)...) // 16 times the limit
	bomb = append(bomb, `"}`...)
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		enc := codingtest.Encode(t, coding, bomb)
		if len(enc) > limit {
			t.Fatalf("%s bomb is %d bytes: not a bomb", coding, len(enc))
		}
		if _, err := Decode(coding, enc, limit); rejectReason(err) != webhook.RejectTooLarge {
			t.Errorf("%s bomb: %v, want %s", coding, err, webhook.RejectTooLarge)
		}
	}
}
