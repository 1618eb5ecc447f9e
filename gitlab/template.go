package gitlab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"
)

// templateRef is GitLab's CUSTOM_TEMPLATE_INTERPOLATION_REGEX.
var templateRef = regexp.MustCompile(`{{(.+?)}}`)

// Template is a custom webhook template, as GitLab's custom_webhook_template:
// JSON text in which each {{a.b.c}} is replaced by the payload's value at
// that path (object keys only: GitLab does not index arrays). Values are
// JSON-encoded, strings without their quotes, so quotes and newlines in a
// value stay escaped inside a "…" of the template (GitLab's
// custom_webhook_template_serialization); a missing value is null. The
// rendered text must be JSON.
//
// A reference starting with @ ({{@project}}) is a variable given to Render,
// not a payload path; GitLab would render it as null.
type Template struct {
	text  string
	parts []templatePart
}

type templatePart struct {
	lit  string
	path []string // nil: lit only
	vari string   // an @variable's name
}

// ParseTemplate compiles a template. It checks that the template is JSON
// once its references are filled in, so a broken template is refused when
// it is configured, not when an event arrives.
func ParseTemplate(text string) (*Template, error) {
	t := &Template{text: text}
	last := 0
	for _, m := range templateRef.FindAllStringSubmatchIndex(text, -1) {
		t.parts = append(t.parts, templatePart{lit: text[last:m[0]]})
		ref := strings.TrimSpace(text[m[2]:m[3]])
		switch {
		case strings.HasPrefix(ref, "@"):
			t.parts = append(t.parts, templatePart{vari: ref[1:]})
		default:
			t.parts = append(t.parts, templatePart{path: strings.Split(ref, ".")})
		}
		last = m[1]
	}
	t.parts = append(t.parts, templatePart{lit: text[last:]})
	var probe bytes.Buffer
	for _, p := range t.parts {
		probe.WriteString(p.lit)
		if p.path != nil || p.vari != "" {
			probe.WriteByte('0')
		}
	}
	if err := json.Unmarshal(probe.Bytes(), new(any)); err != nil {
		return nil, fmt.Errorf("the template is not JSON once its {{…}} are filled in: %w", err)
	}
	return t, nil
}

// String returns the template's text.
func (t *Template) String() string { return t.text }

// ErrTemplateArray is GitLab's error for a path through an array.
var ErrTemplateArray = errors.New("you may be trying to access an array value, which is not supported")

// Render fills the template from payload (a JSON document) and vars, and
// returns compact JSON.
func (t *Template) Render(payload []byte, vars map[string]string) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(t.text) + len(payload)/2)
	root := gjson.ParseBytes(payload)
	for _, p := range t.parts {
		out.WriteString(p.lit)
		switch {
		case p.vari != "":
			v, ok := vars[p.vari]
			if !ok {
				out.WriteString("null")
				continue
			}
			writeJSONString(&out, v)
		case p.path != nil:
			v, err := dig(root, p.path)
			if err != nil {
				return nil, fmt.Errorf("{{%s}}: %w", strings.Join(p.path, "."), err)
			}
			switch {
			case !v.Exists() || v.Type == gjson.Null:
				out.WriteString("null")
			case v.Type == gjson.String:
				writeJSONString(&out, v.String())
			default:
				out.WriteString(v.Raw)
			}
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out.Bytes()); err != nil {
		return nil, fmt.Errorf("error while parsing rendered custom webhook template: %w", err)
	}
	return compact.Bytes(), nil
}

// dig is Ruby's Hash#dig on string keys: each step must be an object.
func dig(v gjson.Result, path []string) (gjson.Result, error) {
	for _, key := range path {
		switch {
		case v.IsArray():
			return gjson.Result{}, ErrTemplateArray
		case !v.IsObject():
			return gjson.Result{}, nil
		}
		v = v.Get(gjson.Escape(key))
	}
	return v, nil
}

// writeJSONString writes s JSON-encoded without its quotes.
func writeJSONString(out *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always encodes
	out.Write(b[1 : len(b)-1])
}
