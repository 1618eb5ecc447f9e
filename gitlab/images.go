package gitlab

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// markdownImage is GitLab's MARKDOWN_SIMPLE_IMAGE (lib/gitlab/hook_data/
// base_builder.rb) in RE2: code blocks and HTML blocks (left alone), or a
// simple image whose URL may start with http://, https:// or //. Without
// the multiline flag, as GitLab compiles it, ^ and $ anchor at the text's
// ends.
var markdownImage = regexp.MustCompile("(?P<code>^```.*?\\n(?:\\n|.)*?\\n```\\ *$)" +
	`|(?P<html>^<[^>]+?>\ *\n(?:\n|.)*?\n<\/[^>]+?>\ *$)` +
	`|(?P<image>!\[(?P<title>[^\n]*?)\]\((?P<url>(?P<https>(https?://|//)?)[^\n]+?)\))`)

var imageGroups = func() map[string]int {
	m := map[string]int{}
	for i, n := range markdownImage.SubexpNames() {
		if n != "" {
			m[n] = i
		}
	}
	return m
}()

// AbsoluteImageURLs rewrites the relative image references of Markdown
// text as GitLab does in webhook payloads: ![t](/uploads/x.png) becomes
// ![t](<instance>/<project>/uploads/x.png), any other relative URL gets the
// instance prefix. Absolute (http://, https://) and protocol-relative (//)
// URLs, reference-style images (![t][label]), code blocks and HTML blocks
// are left alone. instance is the base URL without a trailing slash.
func AbsoluteImageURLs(text, instance, project string) string {
	if instance == "" || !strings.Contains(text, "![") {
		return text
	}
	img, title, url, https := imageGroups["image"], imageGroups["title"], imageGroups["url"], imageGroups["https"]
	var b strings.Builder
	last := 0
	for _, m := range markdownImage.FindAllStringSubmatchIndex(text, -1) {
		b.WriteString(text[last:m[0]])
		last = m[1]
		if m[2*img] < 0 || m[2*https+1] > m[2*https] { // a block, or an absolute URL
			b.WriteString(text[m[0]:m[1]])
			continue
		}
		u := text[m[2*url]:m[2*url+1]]
		if strings.HasPrefix(u, "/uploads") || strings.HasPrefix(u, "uploads") {
			u = joinPath(project, u)
		}
		if !strings.HasPrefix(u, "/") {
			u = "/" + u
		}
		b.WriteString("![" + text[m[2*title]:m[2*title+1]] + "](" + instance + u + ")")
	}
	b.WriteString(text[last:])
	return b.String()
}

// joinPath is Ruby's File.join: one slash between the parts.
func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	return strings.TrimRight(a, "/") + "/" + strings.TrimLeft(b, "/")
}

// markdownFields are the payload fields GitLab writes through
// absolute_image_urls: issue and merge request descriptions, note texts and
// wiki page contents.
var markdownFields = map[string]bool{"description": true, "note": true, "content": true}

// skipObjects hold descriptions GitLab does not rewrite (the project's and
// the repository's).
var skipObjects = map[string]bool{"project": true, "repository": true}

// RewriteImageURLs applies AbsoluteImageURLs to the Markdown fields of a
// JSON payload (description, note and content, except those of the project
// and repository objects), with the event's project path. The payload is
// returned unchanged (same bytes) when nothing is rewritten; otherwise
// only the objects that changed are re-encoded, keeping the key order.
func RewriteImageURLs(payload []byte, instance, project string) []byte {
	if instance == "" || !bytes.Contains(payload, []byte("![")) {
		return payload
	}
	out, changed := rewriteValue(payload, "", instance, project, 0)
	if !changed {
		return payload
	}
	return out
}

const maxRewriteDepth = 64

func rewriteValue(raw json.RawMessage, key, instance, project string, depth int) (json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > maxRewriteDepth || !bytes.Contains(raw, []byte("![")) {
		return raw, false
	}
	switch raw[0] {
	case '"':
		if !markdownFields[key] {
			return raw, false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return raw, false
		}
		r := AbsoluteImageURLs(s, instance, project)
		if r == s {
			return raw, false
		}
		return encode(r), true
	case '{':
		if skipObjects[key] {
			return raw, false
		}
		return rewriteContainer(raw, true, instance, project, depth)
	case '[':
		return rewriteContainer(raw, false, instance, project, depth)
	}
	return raw, false
}

// rewriteContainer walks an object's members or an array's elements,
// re-encoding the container only when a member changed.
func rewriteContainer(raw json.RawMessage, object bool, instance, project string, depth int) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return raw, false
	}
	var buf bytes.Buffer
	if object {
		buf.WriteByte('{')
	} else {
		buf.WriteByte('[')
	}
	changed := false
	for i := 0; dec.More(); i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		key := ""
		if object {
			t, err := dec.Token()
			k, ok := t.(string)
			if err != nil || !ok {
				return raw, false
			}
			key = k
			buf.Write(encode(k))
			buf.WriteByte(':')
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return raw, false
		}
		nv, c := rewriteValue(v, key, instance, project, depth+1)
		changed = changed || c
		buf.Write(nv)
	}
	if !changed {
		return raw, false
	}
	if object {
		buf.WriteByte('}')
	} else {
		buf.WriteByte(']')
	}
	return buf.Bytes(), true
}

// encode marshals a string without HTML escaping (GitLab's JSON keeps <, >
// and & as they are).
func encode(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}
