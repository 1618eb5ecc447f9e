package gitlab

import (
	"encoding/json"
	"errors"
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
	got, err := tmpl.Render([]byte(payload), map[string]string{"project": "acme/api"})
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
	if _, err := tmpl.Render([]byte(`{"items":[{"first":1}]}`), nil); !errors.Is(err, ErrTemplateArray) {
		t.Errorf("path through an array: %v, want ErrTemplateArray", err)
	}
	// An object put inside quotes breaks the JSON: caught at render.
	tmpl, _ = ParseTemplate(`{"x": "{{a}}"}`)
	if _, err := tmpl.Render([]byte(`{"a":{"k":"v"}}`), nil); err == nil {
		t.Error("rendered invalid JSON")
	}
}
