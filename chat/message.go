package chat

import (
	"fmt"
	"strings"
	"time"
)

// message is one notification before it takes a chat's shape: GitLab's
// ChatMessage (message, attachments, activity).
type message struct {
	// summary is the one-line message (GitLab's #message), links in the
	// style's form.
	summary string
	// noPretext: Slack shows the attachment alone (pipelines).
	noPretext bool
	// attachments are Slack's; details is the same in Markdown.
	attachments []attachment
	details     string
	activity    activity
	// threadKey groups the messages of one object in a Google Chat
	// thread, as GitLab's HangoutsChat#parse_thread_key.
	threadKey string
}

// attachment is a Slack message attachment.
type attachment struct {
	Fallback   string  `json:"fallback,omitempty"`
	Color      string  `json:"color,omitempty"`
	AuthorName string  `json:"author_name,omitempty"`
	AuthorIcon string  `json:"author_icon,omitempty"`
	Title      string  `json:"title,omitempty"`
	TitleLink  string  `json:"title_link,omitempty"`
	Text       string  `json:"text,omitempty"`
	Fields     []field `json:"fields,omitempty"`
	Footer     string  `json:"footer,omitempty"`
	FooterIcon string  `json:"footer_icon,omitempty"`
	Ts         int64   `json:"ts,omitempty"`
}

type field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// activity is a Microsoft Teams section.
type activity struct {
	Title    string `json:"activityTitle,omitempty"`
	Subtitle string `json:"activitySubtitle,omitempty"`
	Text     string `json:"activityText,omitempty"`
	Image    string `json:"activityImage,omitempty"`
}

// defaultColor is GitLab's attachment colour.
const defaultColor = "#334455"

// writer builds the messages of one payload in one style.
type writer struct {
	st style
	p  *payload
}

func (w *writer) projectLink() string {
	return w.st.link(w.p.projectName(), w.p.Project.WebURL)
}

func (w *writer) user() string { return w.st.text(w.p.userCombinedName()) }

// blankSHA is git's "no commit" (a created or deleted ref).
func blankSHA(s string) bool { return s == "" || strings.Trim(s, "0") == "" }

func shortSHA(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// push writes GitLab's PushMessage (push and tag push events).
func (w *writer) push() *message {
	p, st := w.p, w.st
	refType, ref := "branch", strings.TrimPrefix(p.Ref, "refs/heads/")
	refURL := p.Project.WebURL + "/-/commits/" + ref
	if name, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
		refType, ref = "tag", name
		refURL = p.Project.WebURL + "/-/tags/" + ref
	}
	refLink := st.link(ref, refURL)
	compareLink := st.link("Compare changes", p.Project.WebURL+"/-/compare/"+p.Before+"..."+p.After)
	var action, shortTarget, target string
	newRef, removed := blankSHA(p.Before), blankSHA(p.After)
	switch {
	case newRef:
		action, shortTarget, target = "pushed new", refLink, "to "+w.projectLink()
	case removed:
		action, shortTarget, target = "removed", st.text(ref), "from "+w.projectLink()
	default:
		action, shortTarget, target = "pushed to", refLink, "of "+w.projectLink()+" ("+compareLink+")"
	}
	short := strings.Join([]string{w.user(), action, refType, shortTarget}, " ")
	m := &message{summary: short + " " + target, threadKey: "push " + p.projectName() + "_" + ref,
		activity: activity{Title: short, Subtitle: "in " + w.projectLink(), Text: compareLink, Image: p.userAvatar()}}
	if newRef || removed || len(p.Commits) == 0 {
		return m
	}
	lines := make([]string, 0, len(p.Commits))
	for _, c := range p.Commits {
		lines = append(lines, st.link(shortSHA(c.ID), c.URL)+": "+st.text(c.commitTitle())+" - "+st.text(c.Author.Name))
	}
	m.details = strings.Join(lines, "\n\n")
	m.attachments = []attachment{{Text: m.details, Color: defaultColor}}
	return m
}

// issue writes GitLab's IssueMessage.
func (w *writer) issue() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	kind := a.Type
	if kind == "" {
		kind = "Issue"
		if p.ObjectKind == "incident" {
			kind = "Incident"
		}
	}
	title := "#" + idText(a.IID) + " " + a.Title
	issueLink := st.link(title, a.URL)
	projectPart := ""
	if p.projectName() != "" {
		projectPart = "[" + w.projectLink() + "] "
	}
	m := &message{
		threadKey: "issue #" + idText(a.IID),
		summary:   fmt.Sprintf("%s%s %s %s by %s", projectPart, kind, issueLink, a.State, w.user()),
		activity:  activity{Title: fmt.Sprintf("%s %s by %s", kind, a.State, w.user()), Subtitle: "in " + w.projectLink(), Text: issueLink, Image: p.userAvatar()},
	}
	if a.Action == "open" {
		m.details = st.body(a.Description, p.Project.WebURL)
		m.attachments = []attachment{{Title: st.text(title), TitleLink: a.URL, Text: m.details, Color: "#C95823"}}
	}
	return m
}

// mergeRequest writes GitLab's MergeMessage.
func (w *writer) mergeRequest() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	state := a.State
	switch a.Action {
	case "approved", "unapproved":
		state = a.Action
	case "approval":
		state = "added their approval to"
	case "unapproval":
		state = "removed their approval from"
	}
	iid := idText(a.IID)
	mrLink := st.link("!"+iid+" *"+firstLine(a.Title)+"*", p.Project.WebURL+"/-/merge_requests/"+iid)
	return &message{
		threadKey: "merge request !" + iid,
		summary:   fmt.Sprintf("%s %s merge request %s in %s", w.user(), state, mrLink, w.projectLink()),
		activity:  activity{Title: fmt.Sprintf("Merge request %s by %s", state, w.user()), Subtitle: "in " + w.projectLink(), Text: mrLink, Image: p.userAvatar()},
	}
}

// note writes GitLab's NoteMessage (comments on commits, issues, merge
// requests and snippets); nil for other targets.
func (w *writer) note() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	var target, title string
	switch {
	case a.NoteableType == "Commit" && p.Commit != nil:
		target, title = "commit "+shortSHA(p.Commit.ID), p.Commit.Message
	case a.NoteableType == "Issue" && p.Issue != nil:
		target, title = "issue #"+idText(p.Issue.IID), p.Issue.Title
	case a.NoteableType == "MergeRequest" && p.MergeRequest != nil:
		target, title = "merge request !"+idText(p.MergeRequest.IID), p.MergeRequest.Title
	case a.NoteableType == "Snippet" && p.Snippet != nil:
		target, title = "snippet $"+idText(p.Snippet.ID), p.Snippet.Title
	default:
		return nil
	}
	commented := st.link("commented on "+target, a.URL)
	title = st.text(firstLine(title))
	m := &message{
		threadKey: target,
		summary:   fmt.Sprintf("%s %s in %s: *%s*", w.user(), commented, w.projectLink(), title),
		details:   st.body(a.Note, p.Project.WebURL),
		activity:  activity{Title: w.user() + " " + commented, Subtitle: "in " + w.projectLink(), Text: title, Image: p.userAvatar()},
	}
	m.attachments = []attachment{{Text: m.details, Color: defaultColor}}
	return m
}

// wikiPage writes GitLab's WikiPageMessage.
func (w *writer) wikiPage() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	action := a.Action
	switch a.Action {
	case "create":
		action = "created"
	case "update":
		action = "edited"
	case "delete":
		action = "deleted"
	}
	pageLink := st.link("wiki page", a.URL)
	m := &message{
		threadKey: "wiki_page " + a.URL,
		summary:   fmt.Sprintf("%s %s %s in %s: *%s*", w.user(), action, pageLink, w.projectLink(), st.text(a.Title)),
		details:   st.body(a.Message, p.Project.WebURL),
		activity:  activity{Title: w.user() + " " + action + " " + pageLink, Subtitle: "in " + w.projectLink(), Text: st.text(a.Title), Image: p.userAvatar()},
	}
	m.attachments = []attachment{{Text: m.details, Color: defaultColor}}
	return m
}

// deployment writes GitLab's DeploymentMessage.
func (w *writer) deployment() *message {
	p, st := w.p, w.st
	summary := "Deploy to " + st.text(p.Environment) + " " + p.Status
	color := defaultColor
	switch p.Status {
	case "running":
		summary = "Starting deploy to " + st.text(p.Environment)
	case "success":
		summary = "Deploy to " + st.text(p.Environment) + " succeeded"
		color = "good"
	case "canceled":
		color = "warning"
	case "failed":
		color = "danger"
	}
	text := fmt.Sprintf("%s with job %s by %s\n%s: %s", w.projectLink(), st.link("#"+idText(p.DeployableID), p.DeployableURL),
		st.link(p.userCombinedName(), p.UserURL), st.link(p.ShortSHA, p.CommitURL), st.text(p.CommitTitle))
	return &message{summary: summary, details: text, attachments: []attachment{{Text: text, Color: color}}}
}

// maxVisibleJobs is how many failed jobs a pipeline message names.
const maxVisibleJobs = 10

// pipeline writes GitLab's PipelineMessage.
func (w *writer) pipeline() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	refType, refURL := "branch", p.Project.WebURL+"/-/commits/"+a.Ref
	if a.Tag {
		refType, refURL = "tag", p.Project.WebURL+"/-/tags/"+a.Ref
	}
	userName := "API"
	if p.User != nil && p.User.Username != "" {
		userName = p.userCombinedName()
	}
	status := a.Status
	color := "danger"
	switch a.Status {
	case "success":
		status, color = "has passed", "good"
		if a.DetailedStatus == "passed with warnings" {
			status, color = "has passed with warnings", "warning"
		}
	case "failed":
		status = "has failed"
	}
	id := idText(a.ID)
	failedJobs := actuallyFailed(p.Builds)
	pipelineURL := p.Project.WebURL + "/-/pipelines/" + id
	failuresURL := pipelineURL + "/failures"
	if len(failedJobs) > 0 {
		pipelineURL = failuresURL
	}
	pipelineLink := st.link("#"+id, pipelineURL)
	refLink := st.link(a.Ref, refURL)
	projectLink := st.link(p.Project.Name, p.Project.WebURL)
	duration := prettyDuration(int64(a.Duration))
	by := st.text(userName)
	m := &message{
		summary: fmt.Sprintf("%s: Pipeline %s of %s %s by %s %s in %s",
			projectLink, pipelineLink, refType, refLink, by, status, duration),
		noPretext: true,
		threadKey: "pipeline " + id,
		activity: activity{Title: fmt.Sprintf("Pipeline %s of %s %s by %s %s", pipelineLink, refType, refLink, by, status),
			Subtitle: "in " + projectLink, Text: "in " + duration, Image: p.userAvatar()},
	}
	m.details = m.summary

	refTitle := "Branch"
	if a.Tag {
		refTitle = "Tag"
	}
	fields := []field{{Title: refTitle, Value: refLink, Short: true}}
	if p.Commit != nil {
		fields = append(fields, field{Title: "Commit", Value: st.link(p.Commit.commitTitle(), p.Commit.URL), Short: true})
	}
	if len(failedJobs) > 0 {
		var stages, jobs []string
		seen := map[string]bool{}
		for _, j := range failedJobs {
			if !seen[j.Stage] {
				seen[j.Stage] = true
				stages = append(stages, st.link(j.Stage, pipelineURL))
			}
		}
		for i, j := range failedJobs {
			if i == maxVisibleJobs {
				jobs = append(jobs, st.link(fmt.Sprintf("and %d more", len(failedJobs)-maxVisibleJobs), failuresURL))
				break
			}
			jobs = append(jobs, st.link(j.Name, p.Project.WebURL+"/-/jobs/"+idText(j.ID)))
		}
		fields = append(fields,
			field{Title: plural("Failed stage", len(stages)), Value: strings.Join(stages, ", "), Short: true},
			field{Title: plural("Failed job", len(failedJobs)), Value: strings.Join(jobs, ", "), Short: true})
	}
	if a.YAMLErrors != "" {
		fields = append(fields, field{Title: "Invalid CI config YAML file", Value: st.text(a.YAMLErrors)})
	}
	if a.Name != "" {
		fields = append(fields, field{Title: "Pipeline name", Value: st.text(a.Name)})
	}
	att := attachment{
		Fallback: m.summary, Color: color, AuthorName: by, AuthorIcon: p.userAvatar(),
		Title:     fmt.Sprintf("Pipeline #%s %s in %s", id, status, duration),
		TitleLink: pipelineURL, Fields: fields, Footer: st.text(p.Project.Name), FooterIcon: p.Project.AvatarURL,
	}
	if t, err := time.Parse("2006-01-02 15:04:05 MST", a.FinishedAt); err == nil {
		att.Ts = t.Unix()
	} else if t, err := time.Parse(time.RFC3339, a.FinishedAt); err == nil {
		att.Ts = t.Unix()
	}
	m.attachments = []attachment{att}
	return m
}

// actuallyFailed are the failed jobs without a successful retry, one per
// name, latest first, as GitLab's PipelineMessage.
func actuallyFailed(builds []build) []build {
	succeeded := map[string]bool{}
	for _, b := range builds {
		if b.Status == "success" {
			succeeded[b.Name] = true
		}
	}
	var out []build
	seen := map[string]bool{}
	for _, b := range builds {
		if b.Status == "failed" && !succeeded[b.Name] && !seen[b.Name] {
			seen[b.Name] = true
			out = append(out, b)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// prettyDuration is mm:ss, or hh:mm:ss from an hour on, as GitLab.
func prettyDuration(sec int64) string {
	if sec < 3600 {
		return fmt.Sprintf("%02d:%02d", sec/60, sec%60)
	}
	return fmt.Sprintf("%02d:%02d:%02d", (sec/3600)%24, (sec/60)%60, sec%60)
}
