package chat

import (
	"encoding/json"
	"strconv"
	"strings"
)

// payload holds the fields of GitLab's event payloads the messages use.
type payload struct {
	ObjectKind string `json:"object_kind"`
	EventType  string `json:"event_type"`

	// Push and tag push.
	Before       string   `json:"before"`
	After        string   `json:"after"`
	Ref          string   `json:"ref"`
	RefProtected *bool    `json:"ref_protected"`
	UserName     string   `json:"user_name"`
	UserAvatar   string   `json:"user_avatar"`
	Commits      []commit `json:"commits"`

	User    *user   `json:"user"`
	Project project `json:"project"`

	ObjectAttributes attributes `json:"object_attributes"`
	Labels           []label    `json:"labels"`

	// Note targets.
	Commit       *commit `json:"commit"`
	Issue        *target `json:"issue"`
	MergeRequest *target `json:"merge_request"`
	Snippet      *target `json:"snippet"`

	// Pipeline jobs.
	Builds []build `json:"builds"`

	// Group mention: the group mentioned.
	Mentioned *struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"mentioned"`

	// Deployment (top-level fields).
	Status        string `json:"status"`
	DeployableID  any    `json:"deployable_id"`
	DeployableURL string `json:"deployable_url"`
	Environment   string `json:"environment"`
	ShortSHA      string `json:"short_sha"`
	CommitURL     string `json:"commit_url"`
	CommitTitle   string `json:"commit_title"`
	UserURL       string `json:"user_url"`
}

type user struct {
	Name      string `json:"name"`
	Username  string `json:"username"`
	AvatarURL string `json:"avatar_url"`
}

type project struct {
	Name              string `json:"name"`
	WebURL            string `json:"web_url"`
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
	AvatarURL         string `json:"avatar_url"`
}

type commit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Author  struct {
		Name string `json:"name"`
	} `json:"author"`
}

// commitTitle is the title of a commit, or its message's first line.
func (c *commit) commitTitle() string {
	if c.Title != "" {
		return c.Title
	}
	return firstLine(c.Message)
}

type target struct {
	ID     any     `json:"id"`
	IID    any     `json:"iid"`
	Title  string  `json:"title"`
	Labels []label `json:"labels"`
}

type label struct {
	Title string `json:"title"`
}

type attributes struct {
	ID             any     `json:"id"`
	IID            any     `json:"iid"`
	Title          string  `json:"title"`
	URL            string  `json:"url"`
	Action         string  `json:"action"`
	State          string  `json:"state"`
	Description    string  `json:"description"`
	Type           string  `json:"type"`
	Note           string  `json:"note"`
	NoteableType   string  `json:"noteable_type"`
	Message        string  `json:"message"`
	Ref            string  `json:"ref"`
	Tag            bool    `json:"tag"`
	Status         string  `json:"status"`
	DetailedStatus string  `json:"detailed_status"`
	Duration       float64 `json:"duration"`
	FinishedAt     string  `json:"finished_at"`
	Name           string  `json:"name"`
	Labels         []label `json:"labels"`
	// YAMLErrors are a pipeline's CI configuration errors (GitLab's
	// message reads them from the pipeline; here the payload carries them).
	YAMLErrors string `json:"yaml_errors"`
	// Alerts and vulnerabilities.
	Severity    string       `json:"severity"`
	Events      any          `json:"events"`
	StartedAt   string       `json:"started_at"`
	Identifiers []identifier `json:"identifiers"`
	// ObjectKind is what a group was mentioned in (issue, merge_request, note).
	ObjectKind string `json:"object_kind"`
}

type identifier struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type build struct {
	ID     any    `json:"id"`
	Name   string `json:"name"`
	Stage  string `json:"stage"`
	Status string `json:"status"`
}

func parsePayload(body []byte) (*payload, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// projectName is the project as messages name it: its full path (GitLab
// uses the project's full name, which payloads do not carry).
func (p *payload) projectName() string {
	if p.Project.PathWithNamespace != "" {
		return p.Project.PathWithNamespace
	}
	return p.Project.Name
}

// userCombinedName is "Full Name (username)", or the one that is known, as
// GitLab's BaseMessage#user_combined_name. Push payloads carry the full
// name in user_name and no user object.
func (p *payload) userCombinedName() string {
	if p.User != nil && p.User.Name != "" && p.User.Username != "" {
		return p.User.Name + " (" + p.User.Username + ")"
	}
	if p.User != nil && p.User.Username != "" {
		return p.User.Username
	}
	return p.UserName
}

func (p *payload) userAvatar() string {
	if p.User != nil && p.User.AvatarURL != "" {
		return p.User.AvatarURL
	}
	return p.UserAvatar
}

// userName is the name Discord shows as the message's author.
func (p *payload) userName() string {
	if p.User != nil && p.User.Username != "" {
		return p.User.Username
	}
	return p.UserName
}

// labels are the event's label titles, where GitLab's label filter looks.
func (p *payload) labels() []string {
	ls := p.Labels
	switch {
	case len(ls) > 0:
	case p.Issue != nil && len(p.Issue.Labels) > 0:
		ls = p.Issue.Labels
	case p.MergeRequest != nil && len(p.MergeRequest.Labels) > 0:
		ls = p.MergeRequest.Labels
	default:
		ls = p.ObjectAttributes.Labels
	}
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Title)
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimRight(s, "\r")
}

// idText renders a JSON id (number or string) as text.
func idText(v any) string {
	switch t := v.(type) {
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		return t
	}
	return ""
}
