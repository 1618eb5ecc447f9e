package chat

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// googleChatMessage is what GitLab's Google Chat integration posts: the
// message as simple text with Slack-style links (<url|text>). Thread holds
// the thread key beside it, so that a resend of a logged message keeps its
// thread; Google Chat takes thread.threadKey in the body as well.
type googleChatMessage struct {
	Text   string            `json:"text"`
	Thread *googleChatThread `json:"thread,omitempty"`
}

type googleChatThread struct {
	ThreadKey string `json:"threadKey"`
}

// googleChatPost is GitLab's HangoutsChat#notify: the pretext, then the
// first attachment's title (linked) and text, a line each.
func googleChatPost(m *message) (Post, error) {
	lines := []string{m.summary}
	if m.noPretext {
		lines[0] = ""
	}
	if len(m.attachments) > 0 {
		a := m.attachments[0]
		switch {
		case a.Title != "" && a.TitleLink != "":
			lines = append(lines, "<"+a.TitleLink+"|"+a.Title+">")
		case a.Title != "":
			lines = append(lines, a.Title)
		}
		if a.Text != "" {
			lines = append(lines, a.Text)
		}
	}
	gm := googleChatMessage{Text: strings.Join(lines, "\n")}
	if m.threadKey != "" {
		gm.Thread = &googleChatThread{ThreadKey: m.threadKey}
	}
	b, err := marshal(&gm)
	if err != nil {
		return Post{}, fmt.Errorf("encoding the Google Chat message: %w", err)
	}
	return Post{ContentType: JSONContentType, Body: b}, nil
}

// webexPost is GitLab's Webex Teams notifier: the message's summary in
// Markdown, {"markdown": …}.
func webexPost(m *message) (Post, error) {
	b, err := marshal(&struct {
		Markdown string `json:"markdown"`
	}{m.summary})
	if err != nil {
		return Post{}, fmt.Errorf("encoding the Webex Teams message: %w", err)
	}
	return Post{ContentType: JSONContentType, Body: b}, nil
}

// googleChatReply is GitLab's messageReplyOption: a message with a thread
// key replies in that thread, or starts it when it is gone.
const googleChatReply = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"

// Target is the URL a message of the service is posted to: for Google
// Chat, the webhook with the message's threadKey and messageReplyOption
// added, as GitLab's notifier does; for the others, the webhook as is.
func (s Service) Target(webhook string, body []byte) string {
	if s != GoogleChat {
		return webhook
	}
	var gm googleChatMessage
	if json.Unmarshal(body, &gm) != nil || gm.Thread == nil || gm.Thread.ThreadKey == "" {
		return webhook
	}
	u, err := url.Parse(webhook)
	if err != nil {
		return webhook
	}
	q := u.Query()
	q.Set("threadKey", gm.Thread.ThreadKey)
	q.Set("messageReplyOption", googleChatReply)
	u.RawQuery = q.Encode()
	return u.String()
}

// ChannelOf is the channel a Slack or Mattermost message names ("" for
// the others, and for a message to the webhook's own channel).
func (s Service) ChannelOf(body []byte) string {
	if !s.slackStyle() {
		return ""
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	var sm slackMessage
	if json.Unmarshal([]byte(v.Get("payload")), &sm) != nil {
		return ""
	}
	return sm.Channel
}
