package chat

import (
	"regexp"
	"strings"
)

// style writes links and user text for one kind of chat: Slack's mrkdwn
// (<url|text>, with &, < and > escaped as Slack requires) or Markdown
// ([text](url)) for Discord and Microsoft Teams, as GitLab's markdown mode.
type style struct {
	slack bool
}

// unsafeMarkup are the characters GitLab's SlackMarkdownSanitizer removes
// from user input so that it cannot open or hijack a link.
const unsafeMarkup = "<>[]|"

// text is user input made safe: link markup removed, as GitLab's
// strip_markup, and & escaped for Slack.
func (s style) text(v string) string {
	v = strings.Map(func(r rune) rune {
		if strings.ContainsRune(unsafeMarkup, r) {
			return -1
		}
		return r
	}, v)
	if s.slack {
		v = strings.ReplaceAll(v, "&", "&amp;")
	}
	return v
}

// slackURL keeps a URL from ending a Slack link early.
var slackURL = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C")

// link is a link with a label made of user input.
func (s style) link(label, url string) string {
	if s.slack {
		return "<" + slackURL.Replace(url) + "|" + s.text(label) + ">"
	}
	return "[" + s.text(label) + "](" + url + ")"
}

// markdownLink is a Markdown link to a web or mail address, as Slack's link
// formatter (slack-notifier's LinkFormatter) finds them.
var markdownLink = regexp.MustCompile(`\[([^\[\]]*?)\]\(((?:https?://|mailto:)[^()\s]*?)\)`)

// relativeUpload is an image uploaded to the project, linked relative to it.
var relativeUpload = regexp.MustCompile(`!\[[^\]]*\]\((/uploads/[^)]*)\)`)

// body is a multi-line text written by a user (a description, a comment):
// Markdown stays Markdown for Discord and Teams; for Slack, &, < and > are
// escaped and Markdown links become Slack links, as GitLab's format().
func (s style) body(v, projectURL string) string {
	if !s.slack {
		return v
	}
	v = relativeUpload.ReplaceAllStringFunc(v, func(m string) string {
		return projectURL + relativeUpload.FindStringSubmatch(m)[1]
	})
	v = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(v)
	return markdownLink.ReplaceAllStringFunc(v, func(m string) string {
		sm := markdownLink.FindStringSubmatch(m)
		return "<" + slackURL.Replace(strings.ReplaceAll(sm[2], "&amp;", "&")) + "|" + sm[1] + ">"
	})
}
