package module

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/codingtest"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

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
		got, err := decode(tc.header, body, 1<<20)
		if err != nil || string(got) != pushBody {
			t.Errorf("%q (%s): %q, %v", tc.header, tc.coder, got, err)
		}
	}
	// A list is undone last coding first.
	stacked := codingtest.Encode(t, "br", codingtest.Encode(t, "gzip", []byte(pushBody)))
	if got, err := decode("gzip, br", stacked, 1<<20); err != nil || string(got) != pushBody {
		t.Errorf("gzip, br: %q, %v", got, err)
	}
	if _, err := decode("gzip, gzip, gzip", stacked, 1<<20); rejectReason(err) != webhook.RejectEncoding {
		t.Errorf("three codings: %v, want %s", err, webhook.RejectEncoding)
	}
	if _, err := decode("compress", []byte{1}, 1<<20); rejectReason(err) != webhook.RejectEncoding {
		t.Errorf("compress: %v, want %s", err, webhook.RejectEncoding)
	}
	if _, err := decode("br", []byte("not brotli at all"), 1<<20); rejectReason(err) != webhook.RejectPayload {
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
		if _, err := decode(coding, enc, limit); rejectReason(err) != webhook.RejectTooLarge {
			t.Errorf("%s bomb: %v, want %s", coding, err, webhook.RejectTooLarge)
		}
	}
}

func TestCaptureDecodesBrotliAndZstdAndKeepsTheClientBytes(t *testing.T) {
	redis := redistest.Start(t)
	c := newCapture(t, redis.URL)
	for i, coding := range []string{"br", "zstd", "deflate"} {
		enc := codingtest.Encode(t, coding, []byte(pushBody))
		rec := serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
			signal(w.Header(), "push", "acme/api")
			w.Header().Set("Content-Encoding", coding)
			w.Write(enc)
		})
		if !bytes.Equal(rec.Body.Bytes(), enc) || rec.Header().Get("Content-Encoding") != coding {
			t.Fatalf("%s: the client's response changed", coding)
		}
		evs := queued(t, c)
		if len(evs) != i+1 || string(evs[i].Body) != pushBody {
			t.Fatalf("%s: events = %d, last body %q", coding, len(evs), evs[len(evs)-1].Body)
		}
	}

	before := rejected(t, webhook.RejectTooLarge)
	big := codingtest.Encode(t, "zstd", []byte(`{"x":"`+strings.Repeat("A", 2<<20)+`"}`))
	serve(t, c, nil, func(w http.ResponseWriter, r *http.Request) {
		signal(w.Header(), "push", "acme/api")
		w.Header().Set("Content-Encoding", "zstd")
		w.Write(big)
	})
	if d := rejected(t, webhook.RejectTooLarge) - before; d != 1 {
		t.Fatalf("too_large rejections grew by %v after a zstd bomb", d)
	}
	if len(queued(t, c)) != 3 {
		t.Fatal("the zstd bomb was queued")
	}
}
