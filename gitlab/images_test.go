package gitlab

import (
	"encoding/json"
	"testing"
)

func TestAbsoluteImageURLs(t *testing.T) {
	const inst, proj = "https://gitlab.example.com", "example-group/example-project"
	cases := []struct{ name, in, want string }{
		// The example of GitLab's webhooks documentation.
		{"uploads", "![image](/uploads/$sha/image.png)",
			"![image](https://gitlab.example.com/example-group/example-project/uploads/$sha/image.png)"},
		{"uploads without slash", "![image](uploads/a/b.png)",
			"![image](https://gitlab.example.com/example-group/example-project/uploads/a/b.png)"},
		{"other relative path", "![x](/group/project/-/raw/main/a.png)",
			"![x](https://gitlab.example.com/group/project/-/raw/main/a.png)"},
		{"relative without slash", "![x](a.png)", "![x](https://gitlab.example.com/a.png)"},
		{"in text", "see ![shot](/uploads/1/s.png) here\nand ![two](/uploads/2/t.png)",
			"see ![shot](https://gitlab.example.com/example-group/example-project/uploads/1/s.png) here\nand ![two](https://gitlab.example.com/example-group/example-project/uploads/2/t.png)"},
		// Not rewritten: absolute, protocol-relative, link labels.
		{"http", "![a](http://cdn.example.com/a.png)", "![a](http://cdn.example.com/a.png)"},
		{"https", "![a](https://cdn.example.com/a.png)", "![a](https://cdn.example.com/a.png)"},
		{"protocol-relative", "![a](//cdn.example.com/a.png)", "![a](//cdn.example.com/a.png)"},
		{"link label", "![image][logo]\n\n[logo]: /uploads/x/logo.png", "![image][logo]\n\n[logo]: /uploads/x/logo.png"},
		{"plain link", "[file](/uploads/x/a.pdf)", "[file](/uploads/x/a.pdf)"},
		{"html img", `<img src="/uploads/x/a.png">`, `<img src="/uploads/x/a.png">`},
		{"code block", "```\n![a](/uploads/x/a.png)\n```", "```\n![a](/uploads/x/a.png)\n```"},
		{"no image", "just text", "just text"},
	}
	for _, c := range cases {
		if got := AbsoluteImageURLs(c.in, inst, proj); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if got := AbsoluteImageURLs("![a](/uploads/x.png)", "", proj); got != "![a](/uploads/x.png)" {
		t.Errorf("without an instance URL the text must stay, got %q", got)
	}
	if got := AbsoluteImageURLs("![a](/uploads/x.png)", "https://h.example/gitlab", proj); got != "![a](https://h.example/gitlab/example-group/example-project/uploads/x.png)" {
		t.Errorf("relative URL root: got %q", got)
	}
}

func TestRewriteImageURLs(t *testing.T) {
	const inst = "https://gitlab.example.com"
	in := `{"object_kind":"note","project":{"description":"![p](/uploads/p.png)"},` +
		`"object_attributes":{"note":"![n](/uploads/n.png) <b>&</b>","id":7,"description":null},` +
		`"issue":{"description":"![i](uploads/i.png)","title":"![t](/uploads/t.png)"},"list":[{"content":"![w](/uploads/w.png)"}]}`
	out := RewriteImageURLs([]byte(in), inst, "g/p")
	want := `{"object_kind":"note","project":{"description":"![p](/uploads/p.png)"},` +
		`"object_attributes":{"note":"![n](https://gitlab.example.com/g/p/uploads/n.png) <b>&</b>","id":7,"description":null},` +
		`"issue":{"description":"![i](https://gitlab.example.com/g/p/uploads/i.png)","title":"![t](/uploads/t.png)"},"list":[{"content":"![w](https://gitlab.example.com/g/p/uploads/w.png)"}]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if !json.Valid(out) {
		t.Fatal("invalid JSON")
	}
	same := []byte(`{"a": 1, "note": "![x](https://e.com/x.png)"}`)
	if got := RewriteImageURLs(same, inst, "g/p"); string(got) != string(same) {
		t.Fatalf("unchanged payload was re-encoded: %s", got)
	}
}
