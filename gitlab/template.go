package gitlab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

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
	ref  string   // the path as written, a.b.c
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
			t.parts = append(t.parts, templatePart{path: strings.Split(ref, "."), ref: ref})
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

// TooLargeError is a rendering that would exceed its limit; it stopped
// there, so it never held more than the limit.
type TooLargeError struct{ Limit int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the rendered template is larger than %d bytes", e.Limit)
}

// Render fills the template from payload (a JSON document) and vars, and
// returns compact JSON of at most limit bytes. The output is bounded while
// it is written, not checked afterwards: a template repeating one large
// field hundreds of times stops at the limit with a *TooLargeError, having
// held no more than that.
func (t *Template) Render(payload []byte, vars map[string]string, limit int) ([]byte, error) {
	out := boundedBuffer{limit: limit}
	out.grow(min(len(t.text)+len(payload)/2, limit))
	root := gjson.ParseBytes(payload)
	// A field referenced again is not looked up (and unescaped) again.
	seen := map[string]gjson.Result{}
	for _, p := range t.parts {
		out.writeString(p.lit)
		switch {
		case p.vari != "":
			v, ok := vars[p.vari]
			if !ok {
				out.writeString("null")
				continue
			}
			out.writeJSONString(v)
		case p.path != nil:
			v, ok := seen[p.ref]
			if !ok {
				var err error
				if v, err = dig(root, p.path); err != nil {
					return nil, fmt.Errorf("{{%s}}: %w", p.ref, err)
				}
				seen[p.ref] = v
			}
			switch {
			case !v.Exists() || v.Type == gjson.Null:
				out.writeString("null")
			case v.Type == gjson.String:
				out.writeJSONString(v.Str)
			default:
				out.writeString(v.Raw)
			}
		}
		if out.full {
			return nil, &TooLargeError{Limit: limit}
		}
	}
	if out.full {
		return nil, &TooLargeError{Limit: limit}
	}
	// Compact JSON is never longer than its source: this copy is bounded
	// by the limit too.
	compact := bytes.NewBuffer(make([]byte, 0, len(out.b)))
	if err := json.Compact(compact, out.b); err != nil {
		return nil, fmt.Errorf("error while parsing rendered custom webhook template: %w", err)
	}
	return compact.Bytes(), nil
}

// boundedBuffer is an append buffer that never holds more than limit
// bytes: a write that would take it over writes nothing more and marks it
// full.
type boundedBuffer struct {
	b     []byte
	limit int
	full  bool
}

// grow makes room for n more bytes, never past the limit.
func (w *boundedBuffer) grow(n int) {
	if cap(w.b)-len(w.b) >= n {
		return
	}
	c := min(max(2*cap(w.b), len(w.b)+n), w.limit)
	nb := make([]byte, len(w.b), c)
	copy(nb, w.b)
	w.b = nb
}

func (w *boundedBuffer) writeString(s string) { writeBounded(w, s) }

func writeBounded[T string | []byte](w *boundedBuffer, s T) {
	if w.full {
		return
	}
	if len(s) > w.limit-len(w.b) {
		w.full = true
		return
	}
	w.grow(len(s))
	w.b = append(w.b, s...)
}

// writeJSONString writes s JSON-encoded without its quotes, byte for byte
// as encoding/json writes a string (HTML characters, U+2028 and U+2029
// escaped; invalid UTF-8 as U+FFFD), in pieces, so a long value is never
// copied whole before the limit is checked.
func (w *boundedBuffer) writeJSONString(s string) {
	const hex = "0123456789abcdef"
	esc := [6]byte{'\\', 'u', '0', '0'}
	start := 0
	for i := 0; i < len(s) && !w.full; {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			w.writeString(s[start:i])
			switch c {
			case '"', '\\':
				esc[1] = c
				writeBounded(w, esc[:2])
			case '\b':
				w.writeString(`\b`)
			case '\f':
				w.writeString(`\f`)
			case '\n':
				w.writeString(`\n`)
			case '\r':
				w.writeString(`\r`)
			case '\t':
				w.writeString(`\t`)
			default:
				esc[1], esc[2], esc[3], esc[4], esc[5] = 'u', '0', '0', hex[c>>4], hex[c&0xf]
				writeBounded(w, esc[:])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			w.writeString(s[start:i])
			w.writeString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			w.writeString(s[start:i])
			esc[1], esc[2], esc[3], esc[4], esc[5] = 'u', '2', '0', '2', hex[r&0xf]
			writeBounded(w, esc[:])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	w.writeString(s[start:])
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
