package gitlab

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCustomWebhookTemplateEscapesValues(t *testing.T) {
	payload := []byte(`{"object_kind":"issue","object_attributes":{"title":"say \"hi\"\nnow","iid":7}}`)
	out, err := RenderCustomWebhookTemplate(`{"kind":"{{object_kind}}","title":"{{object_attributes.title}}","iid":{{object_attributes.iid}}}`, payload, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rendered %s is not JSON: %v", out, err)
	}
	if got["kind"] != "issue" || got["title"] != "say \"hi\"\nnow" || got["iid"] != float64(7) {
		t.Fatalf("rendered %s", out)
	}
}

func TestCustomWebhookTemplateErrorsAreGitLabs(t *testing.T) {
	payload := []byte(`{"object_kind":"push","commits":[{"id":"a"}]}`)
	for tmpl, want := range map[string]string{
		`{"kind": {{object_kind}}}`:  "Error while parsing rendered custom webhook template: ",
		`{"kind": "{{object_kind}}"`: "Error while parsing rendered custom webhook template: ",
		`{"id": "{{commits.id}}"}`:   "Error while parsing rendered custom webhook template: You may be trying to access an array value, which is not supported.",
	} {
		_, err := RenderCustomWebhookTemplate(tmpl, payload, 1<<20)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want %q…", tmpl, err, want)
		}
	}
}
