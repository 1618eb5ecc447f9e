package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// maxCodings bounds the Content-Encoding layers of one payload: HTTP allows
// a list ("gzip, br"), but nothing legitimate stacks more than a couple.
const maxCodings = 2

// zstdMaxWindow bounds the window a zstd frame may ask for (its memory),
// unless the payload limit is larger: 8 MiB is what streaming encoders
// (zstd's and klauspost's) declare by default.
const zstdMaxWindow = 8 << 20

// Decode undoes the Content-Encoding of an event payload (the app or the
// client may compress what it sends): gzip, deflate, br and zstd, and a
// list of them applied in order. Every layer's output is bounded by limit,
// so a decompression bomb is refused as too large without being inflated.
// webhooks_capture decodes the responses it captures with it too.
func Decode(encoding string, body []byte, limit int64) ([]byte, error) {
	var codings []string
	for c := range strings.SplitSeq(encoding, ",") {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
			codings = append(codings, c)
		}
	}
	if len(codings) > maxCodings {
		return nil, &webhook.RejectError{Reason: webhook.RejectEncoding,
			Err: fmt.Errorf("content encoding %q stacks more than %d codings", encoding, maxCodings)}
	}
	for i := len(codings) - 1; i >= 0; i-- { // the last coding was applied last
		var err error
		if body, err = decodeOne(codings[i], body, limit); err != nil {
			return nil, err
		}
	}
	return body, nil
}

func decodeOne(coding string, body []byte, limit int64) ([]byte, error) {
	var r io.Reader
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, badEncoding(coding, err)
		}
		r = zr
	case "deflate":
		// RFC 9110 deflate is zlib-wrapped; some servers send raw deflate
		// (RFC 1951) under that name, as browsers tolerate.
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			fr := flate.NewReader(bytes.NewReader(body))
			defer fr.Close()
			r = fr
		} else {
			r = zr
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(max(limit, zstdMaxWindow))))
		if err != nil {
			return nil, badEncoding(coding, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, &webhook.RejectError{Reason: webhook.RejectEncoding,
			Err: fmt.Errorf("content encoding %q is not supported for event payloads (gzip, deflate, br and zstd are)", coding)}
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(out)) > limit || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, &webhook.RejectError{Reason: webhook.RejectTooLarge,
			Err: fmt.Errorf("decompressed %s payload is larger than max_body (%d bytes)", coding, limit)}
	}
	if err != nil {
		return nil, badEncoding(coding, err)
	}
	return out, nil
}

func badEncoding(coding string, err error) error {
	return &webhook.RejectError{Reason: webhook.RejectPayload, Err: fmt.Errorf("%s payload: %w", coding, err)}
}
