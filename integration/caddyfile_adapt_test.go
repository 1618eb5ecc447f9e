package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/grt-continuation/caddy-webhooks"
)

// TestCaddyfileAdapt adapts each caddyfile_adapt/*.caddyfiletest: the
// Caddyfile, a "----------" line, then the expected JSON or, for a file
// named error_*, the expected error text (which names the Caddyfile line).
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt tests found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, expected, ok := strings.Cut(string(data), "----------")
			if !ok {
				t.Fatal("missing ---------- separator")
			}
			caddyfile, expected = strings.TrimSpace(caddyfile)+"\n", strings.TrimSpace(expected)
			if !strings.HasPrefix(filepath.Base(file), "error_") {
				// CompareAdapt logs a difference; it does not fail the test.
				if !caddytest.CompareAdapt(t, file, caddyfile, "caddyfile", expected) {
					t.Fail()
				}
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
			if err == nil || !strings.Contains(err.Error(), expected) {
				t.Fatalf("error = %v\nwant it to contain %q", err, expected)
			}
		})
	}
}

// The Caddyfiles users copy from must stay valid.
func TestShippedCaddyfilesAdapt(t *testing.T) {
	for _, file := range []string{"../Caddyfile.example", "../examples/demo.Caddyfile"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(data, map[string]any{"filename": file}); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
