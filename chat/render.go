package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// Post is a notification ready to send: the body and its content type.
type Post struct {
	ContentType string
	Body        []byte
	// Channel is the Slack or Mattermost channel it goes to ("": the
	// webhook's own).
	Channel string
}

// Content types of posts.
const (
	FormContentType = "application/x-www-form-urlencoded"
	JSONContentType = "application/json"
)

// ContentType is the content type of the service's posts: GitLab's Slack
// and Mattermost notifier sends a form with the message as JSON in its
// "payload" field; the other chats take JSON.
func (s Service) ContentType() string {
	if s.slackStyle() {
		return FormContentType
	}
	return JSONContentType
}

// discordColour is GitLab's orange (#fc6d26), the colour of its Discord
// embeds.
const discordColour = 16543014

// Render writes the notification of an event for an integration: one post
// per channel it goes to (Slack and Mattermost take a list of channels per
// event, and GitLab posts to each), else one. None when the integration
// does not notify of it, as GitLab decides: the event is off or not one
// the service takes, a push, pipeline or deployment is on a branch not
// selected, a successful pipeline with notify_only_broken_pipelines, an
// issue or merge request update (GitLab sends the open or close that goes
// with it), an event without the labels asked for. now stamps Discord
// embeds.
func Render(s *Settings, trig gitlab.Trigger, body []byte, now time.Time) ([]Post, error) {
	ev, known := EventOf(trig)
	if !known || !s.Triggers.Has(trig) || !s.Service.Supports(ev, s.Group) {
		return nil, nil
	}
	p, err := parsePayload(body)
	if err != nil {
		return nil, fmt.Errorf("reading the %s payload: %w", trig, err)
	}
	if !s.wants(trig, p) {
		return nil, nil
	}
	w := &writer{st: style{slack: s.Service.slackStyle() || s.Service == GoogleChat}, p: p}
	var m *message
	switch trig {
	case gitlab.Push, gitlab.TagPush:
		m = w.push()
	case gitlab.Issues, gitlab.ConfidentialIssues, gitlab.Incident:
		m = w.issue()
	case gitlab.MergeRequests:
		m = w.mergeRequest()
	case gitlab.Note, gitlab.ConfidentialNote:
		m = w.note()
	case gitlab.Pipeline:
		m = w.pipeline()
	case gitlab.WikiPage:
		m = w.wikiPage()
	case gitlab.Deployment:
		m = w.deployment()
	case gitlab.Alert:
		m = w.alert()
	case gitlab.Vulnerability:
		m = w.vulnerability()
	case gitlab.GroupMention, gitlab.GroupConfidentialMention:
		m = w.groupMention()
	}
	if m == nil {
		return nil, nil
	}
	var post Post
	switch s.Service {
	case Slack, Mattermost:
		return slackPosts(s, ev, m)
	case Discord:
		post, err = discordPost(p, m, now)
	case MicrosoftTeams:
		post, err = teamsPost(p, m)
	case GoogleChat:
		post, err = googleChatPost(m)
	case WebexTeams:
		post, err = webexPost(m)
	default:
		err = fmt.Errorf("unknown chat service %q", s.Service)
	}
	if err != nil {
		return nil, err
	}
	return []Post{post}, nil
}

// wants applies the integration's filters to an event.
func (s *Settings) wants(trig gitlab.Trigger, p *payload) bool {
	switch trig {
	case gitlab.Issues, gitlab.ConfidentialIssues, gitlab.MergeRequests, gitlab.Note, gitlab.ConfidentialNote:
		if !s.notifyLabel(p.labels()) {
			return false
		}
	}
	switch trig {
	case gitlab.Push:
		if strings.HasPrefix(p.Ref, "refs/tags/") {
			return true
		}
		return s.notifyForBranch(strings.TrimPrefix(p.Ref, "refs/heads/"), p.Project.DefaultBranch, p.RefProtected)
	case gitlab.Deployment:
		// GitLab's notify_for_ref?: no ref, or a tag, is always notified.
		if p.Ref == "" || strings.HasPrefix(p.Ref, "refs/tags/") {
			return true
		}
		return s.notifyForBranch(strings.TrimPrefix(p.Ref, "refs/heads/"), p.Project.DefaultBranch, nil)
	case gitlab.Issues, gitlab.ConfidentialIssues, gitlab.Incident, gitlab.MergeRequests:
		return p.ObjectAttributes.Action != "update"
	case gitlab.Pipeline:
		a := &p.ObjectAttributes
		if !a.Tag && !s.notifyForBranch(a.Ref, p.Project.DefaultBranch, nil) {
			return false
		}
		switch a.Status {
		case "success":
			return !s.NotifyOnlyBrokenPipelines
		case "failed":
			return true
		}
		return false
	}
	return true
}

// slackMessage is Slack's incoming-webhook message, as GitLab's notifier
// (slack-notifier) posts it.
type slackMessage struct {
	Text        string       `json:"text"`
	Attachments []attachment `json:"attachments,omitempty"`
	Fallback    string       `json:"fallback,omitempty"`
	Channel     string       `json:"channel,omitempty"`
	Username    string       `json:"username,omitempty"`
}

// slackPosts are what GitLab's Slack and Mattermost notifier sends, once
// per channel: the message as JSON in the form field "payload".
func slackPosts(s *Settings, ev Event, m *message) ([]Post, error) {
	channels := s.channels(ev)
	if len(channels) == 0 {
		channels = []string{""} // the webhook's own channel
	}
	posts := make([]Post, 0, len(channels))
	for _, ch := range channels {
		sm := slackMessage{Text: m.summary, Attachments: m.attachments, Fallback: m.summary,
			Channel: ch, Username: strings.TrimSpace(s.Username)}
		if m.noPretext {
			sm.Text = ""
		}
		b, err := marshal(&sm)
		if err != nil {
			return nil, fmt.Errorf("encoding the Slack message: %w", err)
		}
		posts = append(posts, Post{ContentType: FormContentType, Channel: ch,
			Body: []byte(url.Values{"payload": {string(b)}}.Encode())})
	}
	return posts, nil
}

type discordMessage struct {
	Embeds []discordEmbed `json:"embeds"`
}

type discordEmbed struct {
	Author      discordAuthor `json:"author"`
	Description string        `json:"description"`
	Color       int           `json:"color"`
	Timestamp   string        `json:"timestamp"`
}

type discordAuthor struct {
	Name    string `json:"name"`
	IconURL string `json:"icon_url,omitempty"`
}

// discordPost is GitLab's Discord notifier: one embed with the message and
// its attachments in Markdown.
func discordPost(p *payload, m *message, now time.Time) (Post, error) {
	desc := m.summary
	if m.details != "" {
		desc += "\n" + m.details
	}
	b, err := marshal(&discordMessage{Embeds: []discordEmbed{{
		Author:      discordAuthor{Name: p.userName(), IconURL: p.userAvatar()},
		Description: desc, Color: discordColour, Timestamp: now.UTC().Format(time.RFC3339),
	}}})
	if err != nil {
		return Post{}, fmt.Errorf("encoding the Discord message: %w", err)
	}
	return Post{ContentType: JSONContentType, Body: b}, nil
}

type teamsMessage struct {
	Title    string `json:"title"`
	Summary  string `json:"summary"`
	Sections []any  `json:"sections"`
}

type teamsDetails struct {
	Title string      `json:"title"`
	Facts []teamsFact `json:"facts"`
}

type teamsFact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// teamsPost is GitLab's Microsoft Teams notifier: the activity as a
// section, the attachments as a "Details" fact.
func teamsPost(p *payload, m *message) (Post, error) {
	tm := teamsMessage{Title: p.projectName(), Summary: m.summary, Sections: []any{m.activity}}
	if m.details != "" {
		tm.Sections = append(tm.Sections, teamsDetails{Title: "Details", Facts: []teamsFact{{Name: "Attachments", Value: m.details}}})
	}
	b, err := marshal(&tm)
	if err != nil {
		return Post{}, fmt.Errorf("encoding the Microsoft Teams message: %w", err)
	}
	return Post{ContentType: JSONContentType, Body: b}, nil
}

// marshal encodes a message without HTML escapes: chat services read
// JSON, and Slack's own escaping (&amp; &lt; &gt;) is already done.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
