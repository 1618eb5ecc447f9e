// Package chatfixtures holds the sample event payloads the chat
// notification tests share (chat's golden messages, the engine's and the
// browser's chat tests, the integrations API), each with the trigger it is
// announced as. They are GitLab's documented webhook payloads for project
// mike/diaspora, with user text that must be escaped.
package chatfixtures

import (
	"embed"
	"maps"
	"slices"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
)

//go:embed payloads/*.json
var payloads embed.FS

// triggers maps each sample to the trigger it is announced as.
var triggers = map[string]gitlab.Trigger{
	"push": gitlab.Push, "push_new_branch": gitlab.Push, "push_removed_branch": gitlab.Push,
	"tag_push": gitlab.TagPush, "issue_open": gitlab.Issues, "issue_close": gitlab.Issues,
	"merge_request_open": gitlab.MergeRequests, "merge_request_approved": gitlab.MergeRequests,
	"note_commit": gitlab.Note, "note_issue": gitlab.Note, "note_merge_request": gitlab.Note,
	"note_snippet": gitlab.Note, "pipeline_failed": gitlab.Pipeline, "pipeline_success": gitlab.Pipeline,
	"pipeline_yaml_error": gitlab.Pipeline, "wiki_page": gitlab.WikiPage, "deployment": gitlab.Deployment,
	"incident_open": gitlab.Incident, "alert": gitlab.Alert, "vulnerability": gitlab.Vulnerability,
	"group_mention": gitlab.GroupMention,
}

// Project is the project every sample belongs to.
const Project = "mike/diaspora"

// Names lists the samples, sorted.
func Names() []string { return slices.Sorted(maps.Keys(triggers)) }

// Trigger is the trigger a sample is announced as ("" for an unknown
// name).
func Trigger(name string) gitlab.Trigger { return triggers[name] }

// Payload returns a sample's payload, or nil for an unknown name.
func Payload(name string) []byte {
	b, err := payloads.ReadFile("payloads/" + name + ".json")
	if err != nil {
		return nil
	}
	return b
}
