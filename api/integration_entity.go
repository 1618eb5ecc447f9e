package api

import (
	"slices"
	"strings"
	"time"

	"github.com/grt-continuation/caddy-webhooks/chat"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// integrationEntity is GitLab's integration JSON (API::Entities::
// ProjectIntegration). The webhook is a secret and never returned.
type integrationEntity struct {
	ID                       int64          `json:"id"`
	Title                    string         `json:"title"`
	Slug                     string         `json:"slug"`
	CreatedAt                time.Time      `json:"created_at"`
	UpdatedAt                time.Time      `json:"updated_at"`
	Active                   bool           `json:"active"`
	CommitEvents             bool           `json:"commit_events"`
	PushEvents               bool           `json:"push_events"`
	IssuesEvents             bool           `json:"issues_events"`
	IncidentEvents           bool           `json:"incident_events"`
	AlertEvents              bool           `json:"alert_events"`
	ConfidentialIssuesEvents bool           `json:"confidential_issues_events"`
	MergeRequestsEvents      bool           `json:"merge_requests_events"`
	TagPushEvents            bool           `json:"tag_push_events"`
	DeploymentEvents         bool           `json:"deployment_events"`
	NoteEvents               bool           `json:"note_events"`
	ConfidentialNoteEvents   bool           `json:"confidential_note_events"`
	PipelineEvents           bool           `json:"pipeline_events"`
	WikiPageEvents           bool           `json:"wiki_page_events"`
	JobEvents                bool           `json:"job_events"`
	CommentOnEventEnabled    bool           `json:"comment_on_event_enabled"`
	VulnerabilityEvents      bool           `json:"vulnerability_events"`
	GroupMentionEvents       bool           `json:"group_mention_events"`
	GroupConfidentialMention bool           `json:"group_confidential_mention_events"`
	Inherited                bool           `json:"inherited"`
	Properties               map[string]any `json:"properties,omitempty"`
}

func integrationEntityOf(r *webhook.IntegrationRecord, inherited, properties bool) *integrationEntity {
	svc, _ := chat.ParseService(r.Service)
	has := func(t gitlab.Trigger) bool { return slices.Contains(r.Triggers, string(t)) }
	e := &integrationEntity{
		ID: r.ID, Title: svc.Title(), Slug: svc.Slug(), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Active: true,
		PushEvents: has(gitlab.Push), IssuesEvents: has(gitlab.Issues), ConfidentialIssuesEvents: has(gitlab.ConfidentialIssues),
		MergeRequestsEvents: has(gitlab.MergeRequests), TagPushEvents: has(gitlab.TagPush), DeploymentEvents: has(gitlab.Deployment),
		NoteEvents: has(gitlab.Note), ConfidentialNoteEvents: has(gitlab.ConfidentialNote), PipelineEvents: has(gitlab.Pipeline),
		WikiPageEvents: has(gitlab.WikiPage), IncidentEvents: has(gitlab.Incident), AlertEvents: has(gitlab.Alert),
		VulnerabilityEvents: has(gitlab.Vulnerability), GroupMentionEvents: has(gitlab.GroupMention),
		GroupConfidentialMention: has(gitlab.GroupConfidentialMention), Inherited: inherited,
	}
	if !properties {
		return e
	}
	e.Properties = map[string]any{
		"notify_only_broken_pipelines":   r.NotifyOnlyBrokenPipelines,
		"branches_to_be_notified":        r.BranchesToBeNotified,
		"labels_to_be_notified":          r.LabelsToBeNotified,
		"labels_to_be_notified_behavior": r.LabelsToBeNotifiedBehavior,
		"protected_branches":             strings.Join(r.ProtectedBranches, ","),
	}
	if svc.HasChannels() {
		e.Properties["username"] = r.Username
		e.Properties["channel"] = r.Channel
		for _, ev := range chat.Events {
			if svc.Supports(ev, r.Kind == webhook.KindGroup) {
				e.Properties[ev.ChannelField()] = r.Channels[ev.Name]
			}
		}
	}
	return e
}

// integrationInput holds the parameters a PUT gave; nil: not given.
type integrationInput struct {
	webhook, username, channel, branches, labels, labelBehavior, protected *string
	brokenOnly                                                             *bool
	events                                                                 map[gitlab.Trigger]bool
	channels                                                               map[string]string
}

func readIntegrationInput(p *params, svc chat.Service, group bool) *integrationInput {
	in := &integrationInput{events: map[gitlab.Trigger]bool{}, channels: map[string]string{}}
	str := func(name string) *string {
		if v, ok := p.str(name); ok {
			v = strings.TrimSpace(v)
			return &v
		}
		return nil
	}
	in.webhook = str("webhook")
	in.branches = str("branches_to_be_notified")
	in.labels = str("labels_to_be_notified")
	in.labelBehavior = str("labels_to_be_notified_behavior")
	in.protected = str("protected_branches")
	if v, ok := p.boolean("notify_only_broken_pipelines"); ok {
		in.brokenOnly = &v
	}
	// The field before branches_to_be_notified, still accepted by GitLab.
	if v, ok := p.boolean("notify_only_default_branch"); ok && in.branches == nil {
		b := chat.BranchesAll
		if v {
			b = chat.BranchesDefault
		}
		in.branches = &b
	}
	for _, e := range chat.Events {
		if !svc.Supports(e, group) {
			continue // GitLab's API has no such parameter for the service
		}
		info, _ := e.Trigger.Info()
		if v, ok := p.boolean(info.Field); ok {
			in.events[e.Trigger] = v
		}
		if svc.HasChannels() {
			if v := str(e.ChannelField()); v != nil {
				in.channels[e.Name] = *v
			}
		}
	}
	if svc.HasChannels() {
		in.username = str("username")
		in.channel = str("channel")
	}
	return in
}

func (in *integrationInput) apply(r *webhook.IntegrationRecord) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Webhook, in.webhook)
	set(&r.Username, in.username)
	set(&r.Channel, in.channel)
	set(&r.BranchesToBeNotified, in.branches)
	set(&r.LabelsToBeNotified, in.labels)
	set(&r.LabelsToBeNotifiedBehavior, in.labelBehavior)
	if in.brokenOnly != nil {
		r.NotifyOnlyBrokenPipelines = *in.brokenOnly
	}
	if in.protected != nil {
		r.ProtectedBranches = nil
		for _, p := range strings.Split(*in.protected, ",") {
			if p = strings.TrimSpace(p); p != "" {
				r.ProtectedBranches = append(r.ProtectedBranches, p)
			}
		}
	}
	for name, ch := range in.channels {
		if r.Channels == nil {
			r.Channels = map[string]string{}
		}
		if ch == "" {
			delete(r.Channels, name)
		} else {
			r.Channels[name] = ch
		}
	}
	for t, on := range in.events {
		r.Triggers = slices.DeleteFunc(r.Triggers, func(s string) bool { return s == string(t) })
		if on {
			r.Triggers = append(r.Triggers, string(t))
		}
	}
	// Table order, so equal settings store equal.
	slices.SortFunc(r.Triggers, func(a, b string) int {
		ia, _ := gitlab.Trigger(a).Info()
		ib, _ := gitlab.Trigger(b).Info()
		return int(ia.Bit) - int(ib.Bit)
	})
}
