// Package tracker is a small REST service for issues and merge requests that
// knows nothing of webhooks: no X-Webhook-* headers, no GitLab shapes. The
// capture rules in rules.caddyfile make it GitLab-compatible from Caddy
// alone; the demo (scripts/demo.sh) and integration/rules_test.go use it.
//
// Routes (projects are <namespace>/<name>):
//
//	GET  /api/projects/{ns}/{name}/issues                         list issues
//	POST /api/projects/{ns}/{name}/issues                         {"title", "description", "author"} → 201 issue
//	POST /api/projects/{ns}/{name}/issues/{number}/close          → 200 issue
//	POST /api/projects/{ns}/{name}/merge_requests                 {"title", "source_branch", "target_branch", "author"} → 201 merge request
//	POST /api/projects/{ns}/{name}/merge_requests/{number}/merge  → 200 merge request
//
// Errors are {"error": "…"} with 400, 404 or 422.
package tracker

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Issue is an issue as the tracker stores and answers it.
type Issue struct {
	ID          int64     `json:"id"`
	Number      int64     `json:"number"`
	Project     string    `json:"project"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	State       string    `json:"state"`
	Author      User      `json:"author"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	URL         string    `json:"url"`
}

// MergeRequest is a merge request as the tracker stores and answers it.
type MergeRequest struct {
	ID           int64     `json:"id"`
	Number       int64     `json:"number"`
	Project      string    `json:"project"`
	Title        string    `json:"title"`
	SourceBranch string    `json:"source_branch"`
	TargetBranch string    `json:"target_branch"`
	State        string    `json:"state"`
	Author       User      `json:"author"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	URL          string    `json:"url"`
}

// User is who did something.
type User struct {
	Username string `json:"username"`
}

type store struct {
	mu     sync.Mutex
	nextID int64
	issues map[string][]*Issue // by project
	mrs    map[string][]*MergeRequest
}

// New returns the tracker's handler, with empty storage.
func New() http.Handler {
	s := &store{issues: map[string][]*Issue{}, mrs: map[string][]*MergeRequest{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/projects/{ns}/{name}/issues", s.listIssues)
	mux.HandleFunc("POST /api/projects/{ns}/{name}/issues", s.createIssue)
	mux.HandleFunc("POST /api/projects/{ns}/{name}/issues/{number}/close", s.closeIssue)
	mux.HandleFunc("POST /api/projects/{ns}/{name}/merge_requests", s.createMR)
	mux.HandleFunc("POST /api/projects/{ns}/{name}/merge_requests/{number}/merge", s.mergeMR)
	return mux
}

func project(r *http.Request) string { return r.PathValue("ns") + "/" + r.PathValue("name") }

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

func (s *store) listIssues(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.issues[project(r)]
	if list == nil {
		list = []*Issue{}
	}
	reply(w, http.StatusOK, list)
}

func (s *store) createIssue(w http.ResponseWriter, r *http.Request) {
	var in struct{ Title, Description, Author string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	if in.Title == "" {
		fail(w, http.StatusUnprocessableEntity, "title is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, now := project(r), time.Now().UTC()
	s.nextID++
	is := &Issue{ID: s.nextID, Number: int64(len(s.issues[p]) + 1), Project: p, Title: in.Title,
		Description: in.Description, State: "opened", Author: User{Username: in.Author}, CreatedAt: now, UpdatedAt: now}
	is.URL = "http://" + r.Host + "/" + p + "/-/issues/" + strconv.FormatInt(is.Number, 10)
	s.issues[p] = append(s.issues[p], is)
	reply(w, http.StatusCreated, is)
}

func (s *store) closeIssue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.Atoi(r.PathValue("number"))
	list := s.issues[project(r)]
	if n < 1 || n > len(list) {
		fail(w, http.StatusNotFound, "no such issue")
		return
	}
	is := list[n-1]
	is.State, is.UpdatedAt = "closed", time.Now().UTC()
	reply(w, http.StatusOK, is)
}

func (s *store) createMR(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title        string `json:"title"`
		SourceBranch string `json:"source_branch"`
		TargetBranch string `json:"target_branch"`
		Author       string `json:"author"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	if in.Title == "" || in.SourceBranch == "" {
		fail(w, http.StatusUnprocessableEntity, "title and source_branch are required")
		return
	}
	if in.TargetBranch == "" {
		in.TargetBranch = "main"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, now := project(r), time.Now().UTC()
	s.nextID++
	mr := &MergeRequest{ID: s.nextID, Number: int64(len(s.mrs[p]) + 1), Project: p, Title: in.Title,
		SourceBranch: in.SourceBranch, TargetBranch: in.TargetBranch, State: "opened",
		Author: User{Username: in.Author}, CreatedAt: now, UpdatedAt: now}
	mr.URL = "http://" + r.Host + "/" + p + "/-/merge_requests/" + strconv.FormatInt(mr.Number, 10)
	s.mrs[p] = append(s.mrs[p], mr)
	reply(w, http.StatusCreated, mr)
}

func (s *store) mergeMR(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.Atoi(r.PathValue("number"))
	list := s.mrs[project(r)]
	if n < 1 || n > len(list) {
		fail(w, http.StatusNotFound, "no such merge request")
		return
	}
	mr := list[n-1]
	if mr.State != "opened" {
		fail(w, http.StatusUnprocessableEntity, "merge request is "+mr.State)
		return
	}
	mr.State, mr.UpdatedAt = "merged", time.Now().UTC()
	reply(w, http.StatusOK, mr)
}
