// Command demo-receiver is a webhook endpoint written the way one is written
// for GitLab: it checks X-Gitlab-Token and reads the X-Gitlab-* headers. It
// knows nothing about Caddy, which is the point of the demo — deliveries from
// caddy-webhooks must look like GitLab's to it.
package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// maxBody is GitLab's default maximum webhook payload size.
const maxBody = 25 << 20

type delivery struct {
	Time           string          `json:"time"`
	Event          string          `json:"event"`
	IdempotencyKey string          `json:"idempotency_key"`
	EventUUID      string          `json:"event_uuid"`
	WebhookUUID    string          `json:"webhook_uuid"`
	Instance       string          `json:"instance"`
	UserAgent      string          `json:"user_agent"`
	TokenOK        bool            `json:"token_ok"`
	Body           json.RawMessage `json:"body"`
}

type receiver struct {
	token string
	mu    sync.Mutex // serialises stdout blocks and log appends
	log   *os.File
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	token := flag.String("token", "", "expected X-Gitlab-Token (empty: accept any)")
	logPath := flag.String("log", "", "append each delivery as a JSON line to this file")
	flag.Parse()

	rc := &receiver{token: *token}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		rc.log = f
	}

	log.Printf("demo-receiver listening on http://%s (token check: %v)", *listen, *token != "")
	srv := &http.Server{Addr: *listen, Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "cannot read body: "+err.Error(), http.StatusBadRequest)
		return
	}

	// Constant-time compare, as a real receiver should; an empty -token
	// accepts anything.
	got := r.Header.Get("X-Gitlab-Token")
	tokenOK := rc.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(rc.token)) == 1

	d := delivery{
		Time:           time.Now().UTC().Format(time.RFC3339Nano),
		Event:          r.Header.Get("X-Gitlab-Event"),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		EventUUID:      r.Header.Get("X-Gitlab-Event-UUID"),
		WebhookUUID:    r.Header.Get("X-Gitlab-Webhook-UUID"),
		Instance:       r.Header.Get("X-Gitlab-Instance"),
		UserAgent:      r.UserAgent(),
		TokenOK:        tokenOK,
		Body:           rawJSON(raw),
	}

	rc.mu.Lock()
	rc.print(r, d, raw, got != "")
	rc.append(d)
	rc.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if !tokenOK {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"ok":false,"error":"invalid token"}`+"\n")
		return
	}
	io.WriteString(w, `{"ok":true}`+"\n")
}

// print writes a readable block to stdout. It never shows the token itself.
func (rc *receiver) print(r *http.Request, d delivery, raw []byte, tokenSent bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "──── delivery %s %s at %s\n", r.Method, r.URL.RequestURI(), d.Time)
	field := func(k, v string) {
		if v == "" {
			v = "(missing)"
		}
		fmt.Fprintf(&b, "  %-22s %s\n", k, v)
	}
	field("X-Gitlab-Event:", d.Event)
	field("X-Gitlab-Instance:", d.Instance)
	field("X-Gitlab-Event-UUID:", d.EventUUID)
	field("X-Gitlab-Webhook-UUID:", d.WebhookUUID)
	field("Idempotency-Key:", d.IdempotencyKey)
	field("User-Agent:", d.UserAgent)
	switch {
	case rc.token == "":
		field("X-Gitlab-Token:", "not checked (no -token given)")
	case d.TokenOK:
		field("X-Gitlab-Token:", "matches")
	case !tokenSent:
		field("X-Gitlab-Token:", "MISSING — rejected with 401")
	default:
		field("X-Gitlab-Token:", "DOES NOT MATCH — rejected with 401")
	}
	fmt.Fprintf(&b, "  %-22s %s\n", "body:", summarize(raw))
	fmt.Print(b.String())
	if !d.TokenOK {
		log.Printf("warning: rejected delivery from %s: bad X-Gitlab-Token", r.RemoteAddr)
	}
}

func (rc *receiver) append(d delivery) {
	if rc.log == nil {
		return
	}
	line, err := json.Marshal(d)
	if err == nil {
		_, err = rc.log.Write(append(line, '\n'))
	}
	if err != nil {
		log.Printf("warning: cannot write delivery log: %v", err)
	}
}

// rawJSON keeps the body verbatim (compacted to one line) when it is JSON, and
// as a JSON string otherwise, so the log line stays valid JSON.
func rawJSON(raw []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.Bytes()
	}
	s, _ := json.Marshal(string(raw))
	return s
}

// summarize picks out the fields a GitLab receiver would act on.
func summarize(raw []byte) string {
	var p struct {
		ObjectKind string `json:"object_kind"`
		EventName  string `json:"event_name"`
		Ref        string `json:"ref"`
		Project    struct {
			Path string `json:"path_with_namespace"`
		} `json:"project"`
		Commits      []json.RawMessage `json:"commits"`
		TotalCommits *int              `json:"total_commits_count"`
		GroupPath    string            `json:"group_path"`
		User         string            `json:"user_username"`
		GroupAccess  string            `json:"group_access"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Sprintf("not JSON (%d bytes)", len(raw))
	}
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("object_kind", p.ObjectKind)
	add("event_name", p.EventName)
	add("ref", p.Ref)
	add("project", p.Project.Path)
	if p.Commits != nil || p.TotalCommits != nil {
		n := len(p.Commits)
		if p.TotalCommits != nil {
			n = *p.TotalCommits
		}
		add("commits", fmt.Sprint(n))
	}
	add("group", p.GroupPath)
	add("user", p.User)
	add("access", p.GroupAccess)
	if len(parts) == 0 {
		return fmt.Sprintf("%d bytes of JSON", len(raw))
	}
	return strings.Join(parts, " ")
}
