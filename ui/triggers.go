package ui

import (
	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

// triggerView is one checkbox of the Trigger section and one item of the
// Test dropdown, worded as GitLab's Settings > Webhooks page.
type triggerView struct {
	// Field is the hook's API attribute, e.g. "push_events".
	Field string
	// Label and Help are what the form shows.
	Label, Help string
	// GroupOnly triggers are shown for group hooks only.
	GroupOnly bool
	// Testable triggers are listed in the Test dropdown.
	Testable bool
	// Push carries the branch filter.
	Push bool
}

// triggerText is GitLab's wording of each trigger.
var triggerText = map[gitlab.Trigger][2]string{
	gitlab.Push:                {"Push events", "URL is triggered by a push to the repository."},
	gitlab.TagPush:             {"Tag push events", "URL is triggered when a new tag is pushed to the repository."},
	gitlab.Note:                {"Comments", "URL is triggered when someone adds a comment."},
	gitlab.ConfidentialNote:    {"Confidential comments", "URL is triggered when someone adds a comment on a confidential issue."},
	gitlab.Issues:              {"Issues events", "URL is triggered when an issue is created, updated, closed, or reopened."},
	gitlab.ConfidentialIssues:  {"Confidential issues events", "URL is triggered when a confidential issue is created, updated, closed, or reopened."},
	gitlab.MergeRequests:       {"Merge request events", "URL is triggered when a merge request is created, updated, or merged."},
	gitlab.Job:                 {"Job events", "URL is triggered when the job status changes."},
	gitlab.Pipeline:            {"Pipeline events", "URL is triggered when the pipeline status changes."},
	gitlab.WikiPage:            {"Wiki page events", "URL is triggered when a wiki page is created or updated."},
	gitlab.Deployment:          {"Deployment events", "URL is triggered when a deployment starts, finishes, fails, or is canceled."},
	gitlab.FeatureFlag:         {"Feature flag events", "URL is triggered when a feature flag is turned on or off."},
	gitlab.Releases:            {"Releases events", "URL is triggered when a release is created or updated."},
	gitlab.Milestone:           {"Milestone events", "URL is triggered when a milestone is created, closed, reopened, or deleted."},
	gitlab.Emoji:               {"Emoji events", "URL is triggered when an emoji is awarded or revoked."},
	gitlab.ResourceAccessToken: {"Project or group access token events", "URL is triggered when an access token is expiring in the next 7 days."},
	gitlab.ResourceDeployToken: {"Deploy token events", "URL is triggered when a deploy token is expiring in the next 7 days."},
	gitlab.Vulnerability:       {"Vulnerability events", "URL is triggered when a vulnerability is created or updated."},
	gitlab.Member:              {"Member events", "URL is triggered when a member is added, removed, or their access level changes."},
	gitlab.Subgroup:            {"Subgroup events", "URL is triggered when a subgroup is created or removed."},
	gitlab.Project:             {"Project events", "URL is triggered when a project is created or removed."},
}

// triggerViews lists every trigger in GitLab's order.
func triggerViews() []triggerView {
	var out []triggerView
	for _, t := range gitlab.Triggers() {
		text, ok := triggerText[t.Trigger]
		if !ok {
			text = [2]string{t.Field, ""}
		}
		out = append(out, triggerView{
			Field: t.Field, Label: text[0], Help: text[1], GroupOnly: t.GroupOnly,
			Testable: t.Trigger.Testable(), Push: t.Trigger == gitlab.Push,
		})
	}
	return out
}
