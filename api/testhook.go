package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"net/http"
	"net/url"
	"path"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/engine/hooklog"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// samples are the documented test payloads, one per testable trigger
// (samples/<trigger>.json), in the shape of GitLab's webhook events docs.
// Their "project" and "repository" objects are filled in with the hook's
// project when sent.
//
//go:embed samples/*.json
var samples embed.FS

// test serves POST …/hooks/:hook_id/test/:trigger: one synchronous
// delivery of the latest event of that trigger seen for the project (a
// documented sample when there is none), recorded in the hook's log. 201
// {"message":"201 Created"} when the receiver answers 2xx, and the hook is
// re-enabled; otherwise 422 with the receiver's body (or the error) as
// message. Rate limited as GitLab: 5 per minute per project or group and
// caller.
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
	if !q.throttle("test", q.h.opt.TestRateLimit) {
		return
	}
	hook := cfg
	if hook == nil {
		if hook, err = rec.Hook(); err != nil {
			q.h.internalError(q.w, "building a test hook", err)
			return
		}
	}
	if !trig.Testable() {
		writeMessage(q.w, http.StatusUnprocessableEntity, "Testing not available for this hook")
		return
	}
	body := q.latest(trig)
	if body == nil {
		if body = samplePayload(trig, q.ns); body == nil {
			writeMessage(q.w, http.StatusUnprocessableEntity, "Testing not available for this hook")
			return
		}
	}
	res := q.h.rt.TestHook(q.r.Context(), hook, trig, body)
	switch {
	case res.Success():
		writeMessage(q.w, http.StatusCreated, "201 Created")
	case res.Err != nil && res.Status == 0:
		writeMessage(q.w, http.StatusUnprocessableEntity, hooklog.MaskSecrets(hook, res.Err.Error()))
	default:
		// GitLab answers with the receiver's body; its secrets are masked
		// as Recent events masks them.
		writeMessage(q.w, http.StatusUnprocessableEntity, hooklog.MaskBody(hook, res.Body))
	}
}

// latest is the latest event of trig seen for the route's project, or nil.
func (q *request) latest(trig gitlab.Trigger) []byte {
	if q.ns.Kind != webhook.KindProject {
		return nil
	}
	b, err := q.h.rt.LatestEvent(q.r.Context(), q.ns.Path, trig)
	if err != nil {
		q.h.log.Warn("reading the latest event for a test failed; sending the sample", zap.Error(err))
		return nil
	}
	return b
}

// samplePayload returns the documented sample of a trigger for the hook's
// project (for a group hook, a project in the group), or nil.
func samplePayload(t gitlab.Trigger, ns webhook.Namespace) []byte {
	file := string(t)
	switch t {
	case gitlab.TagPush:
		file = string(gitlab.Push)
	case gitlab.ConfidentialIssues:
		file = string(gitlab.Issues)
	}
	raw, err := samples.ReadFile("samples/" + file + ".json")
	if err != nil {
		return nil
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&data) != nil {
		return nil
	}
	project, projectID := ns.Path, ns.ID
	if ns.Kind == webhook.KindGroup {
		project, projectID = ns.Path+"/example-project", 15
	}
	attrs := projectAttrs(project, projectID)
	for _, k := range []string{"project", "repository"} {
		if _, ok := data[k]; ok {
			data[k] = attrs
		}
	}
	if _, ok := data["project_id"]; ok {
		data["project_id"] = projectID
	}
	switch t {
	case gitlab.TagPush:
		data["object_kind"], data["event_name"], data["ref"] = "tag_push", "tag_push", "refs/tags/v1.0.0"
	case gitlab.ConfidentialIssues:
		data["event_type"] = "confidential_issue"
		if oa, ok := data["object_attributes"].(map[string]any); ok {
			oa["confidential"] = true
		}
	case gitlab.Job:
		data["project_name"] = project
	case gitlab.MergeRequests:
		if oa, ok := data["object_attributes"].(map[string]any); ok {
			oa["source"], oa["target"] = attrs, attrs
		}
	case gitlab.Project:
		data["name"], data["path"] = path.Base(project), path.Base(project)
		data["path_with_namespace"], data["project_id"] = project, projectID
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil
	}
	return b
}

// projectAttrs is GitLab's Project#hook_attrs for a project known only by
// its path.
func projectAttrs(project string, id int64) map[string]any {
	ns := path.Dir(project)
	return map[string]any{
		"id": id, "name": path.Base(project), "description": nil, "web_url": nil, "avatar_url": nil,
		"git_ssh_url": nil, "git_http_url": nil,
		"namespace": path.Base(ns), "visibility_level": 0, "path_with_namespace": project,
		"default_branch": "master", "ci_config_path": nil, "homepage": nil, "url": nil,
	}
}
