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
}

// Content types of posts.
const (
	FormContentType = "application/x-www-form-urlencoded"
	JSONContentType = "application/json"
)

// ContentType is the content type of the service's posts: GitLab's Slack
// and Mattermost notifier sends a form with the message as JSON in its
// "payload" field; Discord and Teams take JSON.
func (s Service) ContentType() string {
	if s.slackStyle() {
		return FormContentType
	}
	return JSONContentType
}

// discordColour is GitLab's orange (#fc6d26), the colour of its Discord
// embeds.
const discordColour = 16543014

// Render writes the notification of an event for an integration. ok is
// false when the integration does not notify of it, as GitLab decides: the
// event is off, a push or pipeline is on a branch not selected, a
// successful pipeline with notify_only_broken_pipelines, an issue or merge
// request update (GitLab sends the open or close that goes with it), an
// event without the labels asked for. now stamps Discord embeds.
func Render(s *Settings, trig gitlab.Trigger, body []byte, now time.Time) (post Post, ok bool, err error) {
	ev, known := EventOf(trig)
	if !known || !s.Triggers.Has(trig) {
		return Post{}, false, nil
	}
	p, err := parsePayload(body)
	if err != nil {
		return Post{}, false, fmt.Errorf("reading the %s payload: %w", trig, err)
	}
	if !s.wants(trig, p) {
		return Post{}, false, nil
	}
	w := &writer{st: style{slack: s.Service.slackStyle()}, p: p}
	var m *message
	switch trig {
	case gitlab.Push, gitlab.TagPush:
		m = w.push()
	case gitlab.Issues, gitlab.ConfidentialIssues:
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
	}
	if m == nil {
		return Post{}, false, nil
	}
	switch s.Service {
	case Slack, Mattermost:
		post, err = slackPost(s, ev, m)
	case Discord:
		post, err = discordPost(p, m, now)
	case MicrosoftTeams:
		post, err = teamsPost(p, m)
	default:
		err = fmt.Errorf("unknown chat service %q", s.Service)
	}
	return post, err == nil, err
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
	case gitlab.Issues, gitlab.ConfidentialIssues, gitlab.MergeRequests:
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

// slackPost is what GitLab's Slack and Mattermost notifier sends: the
// message as JSON in the form field "payload".
func slackPost(s *Settings, ev Event, m *message) (Post, error) {
	sm := slackMessage{Text: m.summary, Attachments: m.attachments, Fallback: m.summary,
		Channel: s.channel(ev), Username: strings.TrimSpace(s.Username)}
	if m.noPretext {
		sm.Text = ""
	}
	b, err := marshal(&sm)
	if err != nil {
		return Post{}, fmt.Errorf("encoding the Slack message: %w", err)
	}
	return Post{ContentType: FormContentType, Body: []byte(url.Values{"payload": {string(b)}}.Encode())}, nil
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
