package gitlab

import (
	"errors"
	"fmt"
)

// MaxCustomWebhookTemplate is GitLab's limit on custom_webhook_template,
// in characters.
const MaxCustomWebhookTemplate = 4096

// errCustomTemplateArray is GitLab's InterpolationError text.
var errCustomTemplateArray = errors.New("You may be trying to access an array value, which is not supported.") //nolint:staticcheck // GitLab's text, shown as is

// RenderCustomWebhookTemplate renders a hook's custom_webhook_template
// against the event's payload, as GitLab's WebHookService does before each
// request: {{a.b}} references are filled in JSON-escaped, and the result
// must be JSON. GitLab saves a template without rendering it, so a broken
// one shows here, on every attempt, with GitLab's messages: "Error while
// parsing rendered custom webhook template: …" or "You may be trying to
// access an array value, which is not supported."
func RenderCustomWebhookTemplate(text string, payload []byte) ([]byte, error) {
	t, err := ParseTemplate(text)
	if err == nil {
		var out []byte
		if out, err = t.Render(payload, nil); err == nil {
			return out, nil
		}
	}
	if errors.Is(err, ErrTemplateArray) {
		return nil, errCustomTemplateArray
	}
	// The JSON parser's own words, under GitLab's prefix.
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return nil, fmt.Errorf("Error while parsing rendered custom webhook template: %w", err) //nolint:staticcheck // GitLab's text
}
