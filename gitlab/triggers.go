package gitlab

import "strings"

// Trigger names one kind of event a hook can subscribe to. Its value is the
// hook's API field without the "_events" suffix, e.g. "push" for push_events
// and "merge_requests" for merge_requests_events.
type Trigger string

// The triggers GitLab's project and group hooks have.
const (
	Push                Trigger = "push"
	TagPush             Trigger = "tag_push"
	Issues              Trigger = "issues"
	ConfidentialIssues  Trigger = "confidential_issues"
	Note                Trigger = "note"
	ConfidentialNote    Trigger = "confidential_note"
	MergeRequests       Trigger = "merge_requests"
	WikiPage            Trigger = "wiki_page"
	Pipeline            Trigger = "pipeline"
	Job                 Trigger = "job"
	Deployment          Trigger = "deployment"
	FeatureFlag         Trigger = "feature_flag"
	Releases            Trigger = "releases"
	Milestone           Trigger = "milestone"
	Emoji               Trigger = "emoji"
	ResourceAccessToken Trigger = "resource_access_token"
	ResourceDeployToken Trigger = "resource_deploy_token"
	Vulnerability       Trigger = "vulnerability"
	Member              Trigger = "member"
	Subgroup            Trigger = "subgroup"
	Project             Trigger = "project"

	// Events only GitLab's chat integrations take (no hook has them).
	Incident                 Trigger = "incident"
	Alert                    Trigger = "alert"
	GroupMention             Trigger = "group_mention"
	GroupConfidentialMention Trigger = "group_confidential_mention"
)

// TriggerInfo describes one trigger as GitLab names it in each place.
type TriggerInfo struct {
	Trigger Trigger
	// Field is the boolean hook attribute of the REST API, e.g. "push_events".
	Field string
	// Scope is GitLab's internal hook scope, shown as "trigger" in logs, e.g. "push_hooks".
	Scope string
	// EventHeader is the X-Gitlab-Event value, e.g. "Push Hook".
	EventHeader string
	// ObjectKind is the payload's object_kind (or event_name) for this trigger.
	ObjectKind string
	// GroupOnly is true for events only group hooks receive (member, subgroup, project).
	GroupOnly bool
	// ChatOnly is true for events only chat integrations take (GitLab's
	// incident, alert and group mention notifications): no hook has them.
	ChatOnly bool
	// Bit is the trigger's position in a TriggerSet.
	Bit uint8
}

// triggers is the table every lookup uses; the order fixes each trigger's bit.
var triggers = []TriggerInfo{
	{Trigger: Push, Field: "push_events", Scope: "push_hooks", EventHeader: "Push Hook", ObjectKind: "push"},
	{Trigger: TagPush, Field: "tag_push_events", Scope: "tag_push_hooks", EventHeader: "Tag Push Hook", ObjectKind: "tag_push"},
	{Trigger: Issues, Field: "issues_events", Scope: "issue_hooks", EventHeader: "Issue Hook", ObjectKind: "issue"},
	{Trigger: ConfidentialIssues, Field: "confidential_issues_events", Scope: "confidential_issue_hooks", EventHeader: "Confidential Issue Hook", ObjectKind: "issue"},
	{Trigger: Note, Field: "note_events", Scope: "note_hooks", EventHeader: "Note Hook", ObjectKind: "note"},
	{Trigger: ConfidentialNote, Field: "confidential_note_events", Scope: "confidential_note_hooks", EventHeader: "Confidential Note Hook", ObjectKind: "note"},
	{Trigger: MergeRequests, Field: "merge_requests_events", Scope: "merge_request_hooks", EventHeader: "Merge Request Hook", ObjectKind: "merge_request"},
	{Trigger: WikiPage, Field: "wiki_page_events", Scope: "wiki_page_hooks", EventHeader: "Wiki Page Hook", ObjectKind: "wiki_page"},
	{Trigger: Pipeline, Field: "pipeline_events", Scope: "pipeline_hooks", EventHeader: "Pipeline Hook", ObjectKind: "pipeline"},
	{Trigger: Job, Field: "job_events", Scope: "job_hooks", EventHeader: "Job Hook", ObjectKind: "build"},
	{Trigger: Deployment, Field: "deployment_events", Scope: "deployment_hooks", EventHeader: "Deployment Hook", ObjectKind: "deployment"},
	{Trigger: FeatureFlag, Field: "feature_flag_events", Scope: "feature_flag_hooks", EventHeader: "Feature Flag Hook", ObjectKind: "feature_flag"},
	{Trigger: Releases, Field: "releases_events", Scope: "release_hooks", EventHeader: "Release Hook", ObjectKind: "release"},
	{Trigger: Milestone, Field: "milestone_events", Scope: "milestone_hooks", EventHeader: "Milestone Hook", ObjectKind: "milestone"},
	{Trigger: Emoji, Field: "emoji_events", Scope: "emoji_hooks", EventHeader: "Emoji Hook", ObjectKind: "emoji"},
	{Trigger: ResourceAccessToken, Field: "resource_access_token_events", Scope: "resource_access_token_hooks", EventHeader: "Resource Access Token Hook", ObjectKind: "access_token"},
	{Trigger: ResourceDeployToken, Field: "resource_deploy_token_events", Scope: "resource_deploy_token_hooks", EventHeader: "Resource Deploy Token Hook", ObjectKind: "deploy_token"},
	{Trigger: Vulnerability, Field: "vulnerability_events", Scope: "vulnerability_hooks", EventHeader: "Vulnerability Hook", ObjectKind: "vulnerability"},
	{Trigger: Member, Field: "member_events", Scope: "member_hooks", EventHeader: "Member Hook", ObjectKind: "member", GroupOnly: true},
	{Trigger: Subgroup, Field: "subgroup_events", Scope: "subgroup_hooks", EventHeader: "Subgroup Hook", ObjectKind: "subgroup", GroupOnly: true},
	{Trigger: Project, Field: "project_events", Scope: "project_hooks", EventHeader: "Project Hook", ObjectKind: "project", GroupOnly: true},
	// Chat-only; appended, so that the bits above keep their places.
	{Trigger: Incident, Field: "incident_events", Scope: "incident_hooks", EventHeader: "Incident Hook", ObjectKind: "incident", ChatOnly: true},
	{Trigger: Alert, Field: "alert_events", Scope: "alert_hooks", EventHeader: "Alert Hook", ObjectKind: "alert", ChatOnly: true},
	{Trigger: GroupMention, Field: "group_mention_events", Scope: "group_mention_hooks", EventHeader: "Group Mention Hook", ObjectKind: "group_mention", GroupOnly: true, ChatOnly: true},
	{Trigger: GroupConfidentialMention, Field: "group_confidential_mention_events", Scope: "group_confidential_mention_hooks", EventHeader: "Group Confidential Mention Hook", ObjectKind: "group_mention", GroupOnly: true, ChatOnly: true},
}

var (
	byTrigger = map[Trigger]*TriggerInfo{}
	byAlias   = map[string]Trigger{}
)

func init() {
	for i := range triggers {
		t := &triggers[i]
		t.Bit = uint8(i)
		byTrigger[t.Trigger] = t
		for _, alias := range []string{string(t.Trigger), t.Field, t.Scope, t.EventHeader} {
			byAlias[normalize(alias)] = t.Trigger
		}
	}
	// object_kind values that name exactly one trigger (issue and note are also
	// the kinds of the confidential variants; the plain trigger wins).
	for alias, t := range map[string]Trigger{
		"issue": Issues, "merge_request": MergeRequests, "build": Job,
		"release": Releases, "note": Note, "access_token": ResourceAccessToken,
		"deploy_token": ResourceDeployToken, "confidential_issue": ConfidentialIssues,
	} {
		byAlias[normalize(alias)] = t
	}
}

func normalize(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
}

// ParseTrigger accepts a trigger by any of the names GitLab uses for it: the
// trigger ("push"), the API field ("push_events"), the scope ("push_hooks"),
// the X-Gitlab-Event value ("Push Hook") or the payload's object_kind
// ("merge_request", "build").
func ParseTrigger(s string) (Trigger, bool) {
	t, ok := byAlias[normalize(s)]
	return t, ok
}

// Info returns the table row of a trigger; ok is false for unknown triggers.
func (t Trigger) Info() (TriggerInfo, bool) {
	i, ok := byTrigger[t]
	if !ok {
		return TriggerInfo{}, false
	}
	return *i, true
}

// EventHeader is the X-Gitlab-Event value for the trigger ("" when unknown).
func (t Trigger) EventHeader() string {
	if i, ok := byTrigger[t]; ok {
		return i.EventHeader
	}
	return ""
}

// GroupOnly reports whether only group hooks receive the trigger.
func (t Trigger) GroupOnly() bool {
	i, ok := byTrigger[t]
	return ok && i.GroupOnly
}

// Triggers lists the triggers of hooks in table order (not the chat-only
// ones).
func Triggers() []TriggerInfo {
	out := make([]TriggerInfo, 0, len(triggers))
	for _, t := range triggers {
		if !t.ChatOnly {
			out = append(out, t)
		}
	}
	return out
}

// ChatOnly reports whether only chat integrations take t.
func (t Trigger) ChatOnly() bool {
	i, ok := byTrigger[t]
	return ok && i.ChatOnly
}

// TriggerSet is a set of triggers, one bit each, so matching an event against
// thousands of hooks costs a mask test per hook.
type TriggerSet uint64

// Add puts t into the set; unknown triggers are ignored.
func (s *TriggerSet) Add(t Trigger) {
	if i, ok := byTrigger[t]; ok {
		*s |= 1 << i.Bit
	}
}

// Has reports whether t is in the set.
func (s TriggerSet) Has(t Trigger) bool {
	i, ok := byTrigger[t]
	return ok && s&(1<<i.Bit) != 0
}

// List returns the set's triggers in table order.
func (s TriggerSet) List() []Trigger {
	var out []Trigger
	for _, t := range triggers {
		if s&(1<<t.Bit) != 0 {
			out = append(out, t.Trigger)
		}
	}
	return out
}

// Testable reports whether GitLab's webhooks page offers a test request of
// t (GitLab's "Test" dropdown).
func (t Trigger) Testable() bool {
	switch t {
	case Push, TagPush, Issues, ConfidentialIssues, Note, MergeRequests, Job, Pipeline, WikiPage, Releases,
		Emoji, ResourceAccessToken, Project:
		return true
	}
	return false
}
