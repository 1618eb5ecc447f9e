package gitlab

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestTemplateRendersPayloadFieldsAsJSON(t *testing.T) {
	tmpl, err := ParseTemplate(`{
		"object_kind": "issue",
		"title": "{{issue.title}}",
		"iid": {{issue.number}},
		"labels": {{issue.labels}},
		"author": {{issue.author}},
		"missing": "{{issue.nope}}",
		"project": {"path_with_namespace": "{{@project}}"}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"issue":{"title":"say \"hi\"\n<now>","number":7,"labels":["a","b"],"author":{"name":"Ann"}}}`
	got, err := tmpl.Render([]byte(payload), map[string]string{"project": "acme/api"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object_kind":"issue","title":"say \"hi\"\n\u003cnow\u003e","iid":7,"labels":["a","b"],"author":{"name":"Ann"},"missing":"null","project":{"path_with_namespace":"acme/api"}}`
	if string(got) != want {
		t.Fatalf("rendered\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("not JSON")
	}
}

func TestTemplateRefusesWhatGitLabRefuses(t *testing.T) {
	if _, err := ParseTemplate(`{"title": {{title}`); err == nil {
		t.Error("a template that cannot become JSON was accepted")
	}
	tmpl, _ := ParseTemplate(`{"x": "{{items.first}}"}`)
	if _, err := tmpl.Render([]byte(`{"items":[{"first":1}]}`), nil, 1<<20); !errors.Is(err, ErrTemplateArray) {
		t.Errorf("path through an array: %v, want ErrTemplateArray", err)
	}
	// An object put inside quotes breaks the JSON: caught at render.
	tmpl, _ = ParseTemplate(`{"x": "{{a}}"}`)
	if _, err := tmpl.Render([]byte(`{"a":{"k":"v"}}`), nil, 1<<20); err == nil {
		t.Error("rendered invalid JSON")
	}
}

// hostileTemplate is the amplification GitLab's 4,096-character limit
// still lets through: one field referenced as often as the template holds
// (681 times in 4,095 characters).
func hostileTemplate() string {
	const ref = "{{ab}}"
	n := (MaxCustomWebhookTemplate - 1 - len(`{"a":""}`)) / len(ref)
	t := `{"a":"` + strings.Repeat(ref, n) + `"}`
	return t + strings.Repeat(" ", MaxCustomWebhookTemplate-1-len(t))
}

// allocated is the bytes fn allocates (the test runs nothing beside it).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A rendering is bounded while it is written: a template repeating a
// 1 MB field 681 times (681 MB rendered in full) stops at its limit, and
// what it allocates stays within a few times the limit and the payload.
func TestTemplateRenderIsBoundedWhileWriting(t *testing.T) {
	text := hostileTemplate()
	if len(text) != MaxCustomWebhookTemplate-1 || strings.Count(text, "{{ab}}") < 680 {
		t.Fatalf("hostile template of %d characters, %d references", len(text), strings.Count(text, "{{ab}}"))
	}
	tmpl, err := ParseTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		value string // the field's value
		limit int
	}{
		{"plain 1 MB value, 2 MiB limit", strings.Repeat("x", 1<<20), 2 << 20},
		{"escaped value (1 MB in the payload), 2 MiB limit", strings.Repeat("<\n", 1<<17), 2 << 20},
		{"plain 1 MB value, 64 KiB limit", strings.Repeat("x", 1<<20), 64 << 10},
	}
	for _, c := range cases {
		payload, _ := json.Marshal(map[string]string{"ab": c.value})
		var renderErr error
		used := allocated(func() { _, renderErr = tmpl.Render(payload, nil, c.limit) })
		var tooLarge *TooLargeError
		if !errors.As(renderErr, &tooLarge) || tooLarge.Limit != c.limit {
			t.Errorf("%s: error %v, want a *TooLargeError at %d bytes", c.name, renderErr, c.limit)
		}
		// The payload is read once (gjson copies it, and unescapes the
		// field once); the output grows to the limit at most.
		if bound := uint64(4*c.limit + 2*len(payload)); used > bound {
			t.Errorf("%s: rendering allocated %d bytes, want at most %d (4 × the limit + 2 × the payload)", c.name, used, bound)
		}
		t.Logf("%s: %d bytes allocated for a %d-byte payload", c.name, used, len(payload))
	}

	// Within its limit the same template renders in full.
	payload := []byte(`{"ab":"xy"}`)
	out, err := tmpl.Render(payload, nil, MaxCustomWebhookTemplate)
	if err != nil || !json.Valid(out) || strings.Count(string(out), "xy") < 680 {
		t.Fatalf("small payload: %s, %v", out, err)
	}
	if _, err := tmpl.Render(payload, nil, len(out)-1); err == nil {
		t.Fatal("a rendering one byte over its limit was returned")
	}
}

// A custom webhook template that renders past max_payload says so.
func TestCustomWebhookTemplateOverMaxPayload(t *testing.T) {
	payload, _ := json.Marshal(map[string]string{"ab": strings.Repeat("x", 64<<10)})
	_, err := RenderCustomWebhookTemplate(hostileTemplate(), payload, 1<<20)
	want := "custom webhook template: the rendered template is larger than 1048576 bytes (max_payload); nothing was sent"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// Values are written as encoding/json writes strings, without quotes.
func FuzzTemplateStringEscaping(f *testing.F) {
	for _, s := range []string{"", "plain", "say \"hi\"\n", "<a&b>", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é\\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w := boundedBuffer{limit: 1 << 20}
		w.writeJSONString(s)
		want, _ := json.Marshal(s)
		if string(w.b) != string(want[1:len(want)-1]) {
			t.Fatalf("%q written as %q, encoding/json writes %q", s, w.b, want)
		}
	})
}
