package gitlab

import (
	"errors"
	"fmt"
)

// MaxCustomWebhookTemplate is GitLab's limit on custom_webhook_template,
// in characters.
const MaxCustomWebhookTemplate = 4096

// customTemplateArray is GitLab's text for a path through an array.
const customTemplateArray = "You may be trying to access an array value, which is not supported."

// RenderCustomWebhookTemplate renders a hook's custom_webhook_template
// against the event's payload, as GitLab's WebHookService does before each
// request: {{a.b}} references are filled in JSON-escaped, and the result
// must be JSON. GitLab saves a template without rendering it, so a broken
// one shows here, on every attempt, with GitLab's message: "Error while
// parsing rendered custom webhook template: " and the parser's words, or
// "You may be trying to access an array value, which is not supported.".
//
// The rendering stops at limit bytes (the max_payload a delivery may send)
// with a *TooLargeError: a template repeating a large field would
// otherwise grow without bound.
func RenderCustomWebhookTemplate(text string, payload []byte, limit int) ([]byte, error) {
	t, err := ParseTemplate(text)
	if err == nil {
		var out []byte
		if out, err = t.Render(payload, nil, limit); err == nil {
			return out, nil
		}
	}
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("custom webhook template: %w (max_payload); nothing was sent", err)
	}
	var why any = err
	switch inner := errors.Unwrap(err); {
	case errors.Is(err, ErrTemplateArray):
		why = customTemplateArray
	case inner != nil: // the JSON parser's own words
		why = inner
	}
	return nil, fmt.Errorf("Error while parsing rendered custom webhook template: %v", why) //nolint:staticcheck // GitLab's text
}
