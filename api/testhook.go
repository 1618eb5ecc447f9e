package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// noDataMessages are GitLab's answers when a project has nothing to build
// a test payload from. This gateway keeps no project data, so they are
// what a test of those triggers gets, exactly as on an empty GitLab project.
var noDataMessages = map[gitlab.Trigger]string{
	gitlab.Note:               "Ensure the project has notes.",
	gitlab.Emoji:              "Ensure the project has notes.",
	gitlab.Issues:             "Ensure the project has issues.",
	gitlab.ConfidentialIssues: "Ensure the project has issues.",
	gitlab.MergeRequests:      "Ensure the project has merge requests.",
	gitlab.Job:                "Ensure the project has CI jobs.",
	gitlab.Pipeline:           "Ensure the project has CI pipelines.",
	gitlab.WikiPage:           "Ensure the wiki is enabled and has pages.",
	gitlab.Releases:           "Ensure the project has releases.",
}

// test serves POST …/hooks/:hook_id/test/:trigger: one synchronous
// delivery of a sample payload. 201 {"message":"201 Created"} when the
// receiver answers 2xx; otherwise 422 with the receiver's body (or the
// error) as message.
func (q *request) test() {
	name, err := url.PathUnescape(q.rt.rawKey)
	var trig gitlab.Trigger
	valid := false
	if err == nil {
		for _, t := range triggerFields(q.ns.Kind) {
			if t.Field == name {
				trig, valid = t.Trigger, true
			}
		}
	}
	if !valid {
		writeError(q.w, http.StatusBadRequest, "trigger does not have a valid value")
		return
	}
	rec, cfg, ok := q.find()
	if !ok {
		return
	}
	hook := cfg
	if hook == nil {
		if hook, err = engine.HookFromRecord(rec); err != nil {
			q.h.internalError(q.w, "building a test hook", err)
			return
		}
	}
	body, msg := samplePayload(trig, q.ns)
	if body == nil {
		writeMessage(q.w, http.StatusUnprocessableEntity, msg)
		return
	}
	res := q.h.rt.SendTest(q.r.Context(), hook, trig, body)
	switch {
	case res.Success():
		writeMessage(q.w, http.StatusCreated, "201 Created")
	case res.Err != nil:
		writeMessage(q.w, http.StatusUnprocessableEntity, res.Err.Error())
	default:
		writeMessage(q.w, http.StatusUnprocessableEntity, string(res.Body))
	}
}

// samplePayload returns the test payload of a trigger, or GitLab's message
// for a trigger that cannot be tested.
func samplePayload(t gitlab.Trigger, ns redisstore.Namespace) ([]byte, string) {
	if msg, ok := noDataMessages[t]; ok {
		return nil, msg
	}
	project := ns.Path
	projectID := ns.ID
	if ns.Kind == redisstore.KindGroup {
		project, projectID = ns.Path+"/example-project", 15
	}
	var data map[string]any
	switch t {
	case gitlab.Push, gitlab.TagPush:
		data = pushSample(t, project, projectID)
	case gitlab.ResourceAccessToken:
		data = map[string]any{
			"object_kind": "access_token", "event_name": "expiring_access_token",
			"project": projectAttrs(project, projectID),
			"object_attributes": map[string]any{
				"id": 1, "user_id": 4, "name": "pat_for_webhook_event",
				"created_at": "2024-01-01T00:00:00Z", "expires_at": "2024-01-03",
			},
		}
	default:
		return nil, "Testing not available for this hook"
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, "Testing not available for this hook"
	}
	return b, ""
}

func projectAttrs(project string, id int64) map[string]any {
	ns := path.Dir(project)
	return map[string]any{
		"id": id, "name": path.Base(project), "description": nil, "web_url": nil, "avatar_url": nil,
		"namespace": path.Base(ns), "visibility_level": 0, "path_with_namespace": project,
		"default_branch": "master", "ci_config_path": nil,
	}
}

// pushSample is GitLab's Push SAMPLE_DATA (what GitLab sends to test a push
// hook of an empty repository), for the hook's project.
func pushSample(t gitlab.Trigger, project string, projectID int64) map[string]any {
	kind, ref := "push", "refs/heads/master"
	if t == gitlab.TagPush {
		kind, ref = "tag_push", "refs/tags/v1.0.0"
	}
	return map[string]any{
		"object_kind": kind, "event_name": kind,
		"before":        "95790bf891e76fee5e1747ab589903a6a1f80f22",
		"after":         "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		"ref":           ref,
		"ref_protected": true,
		"checkout_sha":  "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		"message":       "Hello World",
		"user_id":       4, "user_name": "John Smith", "user_username": "jsmith",
		"user_email":  "john@example.com",
		"user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
		"project_id":  projectID,
		"project":     projectAttrs(project, projectID),
		"commits": []any{map[string]any{
			"id":        "c5feabde2d8cd023215af4d2ceeb7a64839fc428",
			"message":   "Add simple search to projects in public area",
			"title":     "Add simple search to projects in public area",
			"timestamp": "2013-05-13T18:18:08+00:00",
			"url":       "https://test.example.com/gitlab/gitlab/-/commit/c5feabde2d8cd023215af4d2ceeb7a64839fc428",
			"author":    map[string]any{"name": "Test User", "email": "test@example.com"},
			"added":     []string{}, "modified": []string{}, "removed": []string{},
		}},
		"total_commits_count": 1,
		"push_options":        map[string]any{"ci": map[string]any{"skip": true}},
	}
}
