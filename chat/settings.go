// Package chat turns GitLab event payloads into chat notifications, as
// GitLab's Slack, Mattermost, Discord, Microsoft Teams, Google Chat and
// Webex Teams integrations write them (GitLab's Integrations::ChatMessage classes and notifiers). It only
// formats: no Redis, no HTTP.
package chat

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// Service names a chat integration by its slug in GitLab's API.
type Service string

// The chat integrations.
const (
	Slack          Service = "slack"
	Mattermost     Service = "mattermost"
	Discord        Service = "discord"
	MicrosoftTeams Service = "microsoft_teams"
	// GoogleChat keeps GitLab's slug from when it was Hangouts Chat.
	GoogleChat Service = "hangouts_chat"
	WebexTeams Service = "webex_teams"
)

// Services lists the chat integrations in the order the page shows them.
var Services = []Service{Slack, Mattermost, Discord, MicrosoftTeams, GoogleChat, WebexTeams}

// ParseService accepts a slug as GitLab's API paths spell it
// ("microsoft-teams" and "microsoft_teams" alike).
func ParseService(s string) (Service, bool) {
	sv := Service(strings.ReplaceAll(strings.ToLower(s), "-", "_"))
	if slices.Contains(Services, sv) {
		return sv, true
	}
	return "", false
}

// Title is the integration's name as GitLab shows it.
func (s Service) Title() string {
	switch s {
	case Slack:
		return "Slack notifications"
	case Mattermost:
		return "Mattermost notifications"
	case Discord:
		return "Discord Notifications"
	case MicrosoftTeams:
		return "Microsoft Teams notifications"
	case GoogleChat:
		return "Google Chat"
	case WebexTeams:
		return "Webex Teams"
	}
	return string(s)
}

// Slug is the integration's slug in GitLab's API responses.
func (s Service) Slug() string { return strings.ReplaceAll(string(s), "_", "-") }

// slackStyle reports whether the service takes Slack's message format
// (GitLab sends Mattermost notifications through the same notifier).
func (s Service) slackStyle() bool { return s == Slack || s == Mattermost }

// HasChannels reports whether the service takes channel and username
// settings (Slack and Mattermost; the other chats' webhooks post to one
// channel or space).
func (s Service) HasChannels() bool { return s.slackStyle() }

// Event is one of GitLab's chat notification events; each has a boolean
// (Trigger's API field, e.g. push_events) and a channel field
// (<event>_channel).
type Event struct {
	Name    string
	Trigger gitlab.Trigger
}

// Events are the events chat integrations support, as GitLab's
// Base::ChatNotification::SUPPORTED_EVENTS and GROUP_ONLY_SUPPORTED_EVENTS,
// with the alert event of its Slack notifier and the vulnerability event
// of its Enterprise Edition. Which service takes which: Supports.
var Events = []Event{
	{"push", gitlab.Push},
	{"issue", gitlab.Issues},
	{"confidential_issue", gitlab.ConfidentialIssues},
	{"merge_request", gitlab.MergeRequests},
	{"note", gitlab.Note},
	{"confidential_note", gitlab.ConfidentialNote},
	{"tag_push", gitlab.TagPush},
	{"pipeline", gitlab.Pipeline},
	{"wiki_page", gitlab.WikiPage},
	{"deployment", gitlab.Deployment},
	{"incident", gitlab.Incident},
	{"alert", gitlab.Alert},
	{"vulnerability", gitlab.Vulnerability},
	{"group_mention", gitlab.GroupMention},
	{"group_confidential_mention", gitlab.GroupConfidentialMention},
}

// Supports reports whether the service notifies of e, for a group's
// integration when group is set: GitLab's supported_events of each
// integration. Slack and Mattermost take every event (group mentions
// only at group level); Discord and Microsoft Teams the first ten;
// Google Chat and Webex Teams those but deployments.
func (s Service) Supports(e Event, group bool) bool {
	switch e.Trigger {
	case gitlab.Incident, gitlab.Alert, gitlab.Vulnerability:
		return s.slackStyle()
	case gitlab.GroupMention, gitlab.GroupConfidentialMention:
		return s.slackStyle() && group
	case gitlab.Deployment:
		return s != GoogleChat && s != WebexTeams
	}
	return true
}

// EventOf returns the chat event of a trigger.
func EventOf(t gitlab.Trigger) (Event, bool) {
	for _, e := range Events {
		if e.Trigger == t {
			return e, true
		}
	}
	return Event{}, false
}

// ChannelField is the API field of the event's channel override.
func (e Event) ChannelField() string { return e.Name + "_channel" }

// Branch selections of branches_to_be_notified.
const (
	BranchesAll                 = "all"
	BranchesDefault             = "default"
	BranchesProtected           = "protected"
	BranchesDefaultAndProtected = "default_and_protected"
)

// Label behaviours of labels_to_be_notified_behavior.
const (
	MatchAnyLabel  = "match_any"
	MatchAllLabels = "match_all"
)

// Settings are an integration's choices, GitLab's fields.
type Settings struct {
	Service Service
	// Group is set for a group's integration, which alone takes group
	// mention events.
	Group bool
	// Username and Channel override the webhook's defaults (Slack and
	// Mattermost). Channel, and each of Channels, is a comma-separated
	// list of at most MaxChannels: a message goes to each.
	Username string
	Channel  string
	// Channels are the per-event overrides, by event name ("push",
	// "confidential_issue", …).
	Channels map[string]string
	// Triggers are the events the integration notifies of.
	Triggers gitlab.TriggerSet
	// NotifyOnlyBrokenPipelines drops successful pipelines. Default: true,
	// as GitLab.
	NotifyOnlyBrokenPipelines bool
	// BranchesToBeNotified selects the branches of push and pipeline
	// events: all, default, protected, default_and_protected. Default:
	// default, as GitLab.
	BranchesToBeNotified string
	// ProtectedBranches are wildcard patterns of the protected branches,
	// used when a payload does not say whether its ref is protected (push
	// payloads do, in ref_protected). Empty: the default branch is the
	// protected one, as GitLab protects it in a new project.
	ProtectedBranches []string
	// LabelsToBeNotified ("~backend,~frontend") limits issue, merge
	// request and comment events to those with the labels; empty: all.
	LabelsToBeNotified string
	// LabelsToBeNotifiedBehavior is match_any (default) or match_all.
	LabelsToBeNotifiedBehavior string
}

// Validate checks the settings as GitLab does on save.
func (s *Settings) Validate() error {
	if _, ok := ParseService(string(s.Service)); !ok {
		return fmt.Errorf("unknown chat service %q", s.Service)
	}
	switch s.BranchesToBeNotified {
	case BranchesAll, BranchesDefault, BranchesProtected, BranchesDefaultAndProtected:
	default:
		return errors.New("branches_to_be_notified does not have a valid value")
	}
	switch s.LabelsToBeNotifiedBehavior {
	case "", MatchAnyLabel, MatchAllLabels:
	default:
		return errors.New("labels_to_be_notified_behavior does not have a valid value")
	}
	for _, e := range Events {
		if len(s.channels(e)) > MaxChannels {
			return fmt.Errorf("%s cannot have more than %d channels", e.ChannelField(), MaxChannels)
		}
	}
	for _, p := range s.ProtectedBranches {
		if strings.TrimSpace(p) == "" {
			return errors.New("protected branch patterns must not be blank")
		}
		if _, err := gitlab.NewBranchFilter(gitlab.StrategyWildcard, p); err != nil {
			return fmt.Errorf("protected branch pattern: %w", err)
		}
	}
	return nil
}

// MaxChannels is how many channels one event may post to, as GitLab's
// channel_limit_per_event.
const MaxChannels = 10

// channels are where a message of event e goes, GitLab's
// channels_for_event: its override, else the default channel, each a
// comma-separated list (blanks dropped, duplicates once). Confidential
// events fall back to their plain event's override, as GitLab. None: the
// webhook's own channel.
func (s *Settings) channels(e Event) []string {
	list := strings.TrimSpace(s.Channels[e.Name])
	if list == "" {
		switch e.Name {
		case "confidential_issue":
			list = strings.TrimSpace(s.Channels["issue"])
		case "confidential_note":
			list = strings.TrimSpace(s.Channels["note"])
		}
	}
	if list == "" {
		list = s.Channel
	}
	var out []string
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// notifyForBranch applies branches_to_be_notified: the default branch is
// the payload's project.default_branch; a branch is protected when the
// payload says so (ref_protected) or, failing that, when it matches
// ProtectedBranches (or is the default branch when none are given).
func (s *Settings) notifyForBranch(ref, defaultBranch string, protected *bool) bool {
	isDefault := defaultBranch != "" && ref == defaultBranch
	isProtected := false
	switch {
	case protected != nil:
		isProtected = *protected
	case len(s.ProtectedBranches) == 0:
		isProtected = isDefault
	default:
		for _, p := range s.ProtectedBranches {
			if f, err := gitlab.NewBranchFilter(gitlab.StrategyWildcard, p); err == nil && strings.TrimSpace(p) != "" && f.Match(ref) {
				isProtected = true
				break
			}
		}
	}
	switch s.BranchesToBeNotified {
	case BranchesAll:
		return true
	case BranchesDefault:
		return isDefault
	case BranchesProtected:
		return isProtected
	case BranchesDefaultAndProtected:
		return isDefault || isProtected
	}
	return false
}

// notifyLabel applies labels_to_be_notified to the event's labels.
func (s *Settings) notifyLabel(labels []string) bool {
	var want []string
	for _, l := range strings.Split(strings.ReplaceAll(s.LabelsToBeNotified, "~", ""), ",") {
		if l = strings.TrimSpace(l); l != "" {
			want = append(want, l)
		}
	}
	if len(want) == 0 {
		return true
	}
	have := map[string]bool{}
	for _, l := range labels {
		have[l] = true
	}
	matched := 0
	for _, w := range want {
		if have[w] {
			matched++
		}
	}
	if s.LabelsToBeNotifiedBehavior == MatchAllLabels {
		return matched == len(want)
	}
	return matched > 0
}

// MaskWebhook is a chat webhook URL as it may be logged or shown: the
// whole path is the secret (Slack's …/services/T…/B…/<token>, Discord's
// …/webhooks/<id>/<token>), so only the scheme and host remain.
func MaskWebhook(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "*****"
	}
	return u.Scheme + "://" + u.Host + "/*****"
}
