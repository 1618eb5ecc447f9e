package module

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/grt-continuation/caddy-webhooks/internal/codingtest"
	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

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
