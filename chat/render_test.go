package chat

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/internal/chatfixtures"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var stamp = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func allEvents(service Service) *Settings {
	s := &Settings{Service: service, Group: true, Username: "GitLab", Channel: "#general",
		Channels: map[string]string{"pipeline": "#ci"}, BranchesToBeNotified: BranchesAll}
	for _, e := range Events {
		s.Triggers.Add(e.Trigger)
	}
	return s
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b := chatfixtures.Payload(name)
	if b == nil {
		t.Fatalf("no sample %q", name)
	}
	return b
}

// render1 renders a message that goes to one place.
func render1(t *testing.T, s *Settings, trig gitlab.Trigger, body []byte) (Post, bool) {
	t.Helper()
	posts, err := Render(s, trig, body, stamp)
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) > 1 {
		t.Fatalf("%d posts, want one", len(posts))
	}
	if len(posts) == 0 {
		return Post{}, false
	}
	return posts[0], true
}

// readable is what a golden file holds: the message as JSON, the Slack
// form field decoded.
func readable(t *testing.T, p Post) []byte {
	t.Helper()
	body := p.Body
	if p.ContentType == FormContentType {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatal(err)
		}
		body = []byte(v.Get("payload"))
	}
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestRenderGolden(t *testing.T) {
	for _, name := range chatfixtures.Names() {
		trig := chatfixtures.Trigger(name)
		ev, _ := EventOf(trig)
		for _, svc := range []Service{Slack, Discord, MicrosoftTeams, GoogleChat, WebexTeams} {
			if !svc.Supports(ev, true) {
				continue
			}
			t.Run(name+"/"+string(svc), func(t *testing.T) {
				post, ok := render1(t, allEvents(svc), trig, sample(t, name))
				if !ok {
					t.Fatal("not rendered")
				}
				got := readable(t, post)
				golden := filepath.Join("testdata", name+"."+string(svc)+".golden")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./chat/ -update to write it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", golden, got, want)
				}
			})
		}
	}
}

// GitLab posts Mattermost notifications through its Slack notifier.
func TestMattermostIsSlack(t *testing.T) {
	a, _ := render1(t, allEvents(Slack), gitlab.Push, sample(t, "push"))
	b, _ := render1(t, allEvents(Mattermost), gitlab.Push, sample(t, "push"))
	if !bytes.Equal(a.Body, b.Body) || a.ContentType != FormContentType {
		t.Fatalf("Mattermost differs from Slack:\n%s\n%s", a.Body, b.Body)
	}
}

func TestSlackEscapesUserText(t *testing.T) {
	post, _ := render1(t, allEvents(Slack), gitlab.Push, sample(t, "push"))
	text := string(readable(t, post))
	// The commit title "fixed readme <b>&</b> [docs](https://evil.example)"
	// can neither open a link nor carry a raw &.
	if !strings.Contains(text, `fixed readme b&amp;/b docs(https://evil.example)`) {
		t.Errorf("commit title not sanitised:\n%s", text)
	}
	if strings.Contains(text, "<https://evil.example") {
		t.Errorf("user text became a link:\n%s", text)
	}
}

func render(t *testing.T, s *Settings, trig gitlab.Trigger, body []byte) bool {
	t.Helper()
	posts, err := Render(s, trig, body, stamp)
	if err != nil {
		t.Fatal(err)
	}
	return len(posts) > 0
}

func TestFilters(t *testing.T) {
	s := allEvents(Slack)
	s.NotifyOnlyBrokenPipelines = true
	if render(t, s, gitlab.Pipeline, sample(t, "pipeline_success")) {
		t.Error("a successful pipeline was sent with notify_only_broken_pipelines")
	}
	if !render(t, s, gitlab.Pipeline, sample(t, "pipeline_failed")) {
		t.Error("a failed pipeline was not sent")
	}
	if render(t, s, gitlab.Pipeline, bytes.Replace(sample(t, "pipeline_failed"), []byte(`"status": "failed"`), []byte(`"status": "running"`), 1)) {
		t.Error("a running pipeline was sent")
	}

	off := allEvents(Slack)
	var none gitlab.TriggerSet
	off.Triggers = none
	off.Triggers.Add(gitlab.Issues)
	if render(t, off, gitlab.Push, sample(t, "push")) {
		t.Error("push_events off, yet a push was sent")
	}

	update := bytes.Replace(sample(t, "issue_open"), []byte(`"action": "open"`), []byte(`"action": "update"`), 1)
	if render(t, s, gitlab.Issues, update) {
		t.Error("an issue update was sent (GitLab skips them)")
	}
}

func TestBranchesToBeNotified(t *testing.T) {
	for _, tc := range []struct {
		branches  string
		protected []string
		sample    string
		want      bool
	}{
		{BranchesDefault, nil, "push", true},                         // master is project.default_branch
		{BranchesDefault, nil, "push_new_branch", false},             // feature/chat
		{BranchesProtected, nil, "push", true},                       // ref_protected: true
		{BranchesProtected, nil, "push_new_branch", false},           // ref_protected: false
		{BranchesDefaultAndProtected, nil, "push_new_branch", false}, //
		{BranchesAll, nil, "push_new_branch", true},
		{BranchesProtected, nil, "pipeline_failed", true},                    // no flag: the default branch is protected
		{BranchesProtected, []string{"release/*"}, "pipeline_failed", false}, // patterns given, master not among them
		{BranchesProtected, []string{"mas*"}, "pipeline_failed", true},
	} {
		s := allEvents(Slack)
		s.BranchesToBeNotified, s.ProtectedBranches = tc.branches, tc.protected
		trig := chatfixtures.Trigger(tc.sample)
		if got := render(t, s, trig, sample(t, tc.sample)); got != tc.want {
			t.Errorf("%s %v on %s: sent=%v, want %v", tc.branches, tc.protected, tc.sample, got, tc.want)
		}
	}
	// Tags are always notified, as GitLab.
	s := allEvents(Slack)
	s.BranchesToBeNotified = BranchesDefault
	if !render(t, s, gitlab.TagPush, sample(t, "tag_push")) {
		t.Error("a tag push was filtered by branch")
	}
}

func TestLabelsToBeNotified(t *testing.T) {
	for _, tc := range []struct {
		labels, behavior string
		want             bool
	}{
		{"", "", true},
		{"~API", MatchAnyLabel, true},
		{"~backend, ~API", MatchAnyLabel, true},
		{"~backend,~API", MatchAllLabels, false},
		{"~frontend", "", false},
	} {
		s := allEvents(Slack)
		s.LabelsToBeNotified, s.LabelsToBeNotifiedBehavior = tc.labels, tc.behavior
		for _, name := range []string{"issue_open", "note_issue"} {
			if got := render(t, s, chatfixtures.Trigger(name), sample(t, name)); got != tc.want {
				t.Errorf("%s %q/%s: sent=%v, want %v", name, tc.labels, tc.behavior, got, tc.want)
			}
		}
	}
}

func TestChannels(t *testing.T) {
	s := allEvents(Slack)
	s.Channels = map[string]string{"issue": "#issues"}
	post, _ := render1(t, s, gitlab.ConfidentialIssues, sample(t, "issue_open"))
	if !strings.Contains(string(readable(t, post)), `"channel": "#issues"`) {
		t.Errorf("a confidential issue does not fall back to issue_channel:\n%s", readable(t, post))
	}
	post, _ = render1(t, s, gitlab.Push, sample(t, "push"))
	if !strings.Contains(string(readable(t, post)), `"channel": "#general"`) {
		t.Errorf("push does not go to the default channel:\n%s", readable(t, post))
	}
}

func TestValidate(t *testing.T) {
	s := allEvents(Slack)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Settings){
		func(s *Settings) { s.BranchesToBeNotified = "some" },
		func(s *Settings) { s.LabelsToBeNotifiedBehavior = "match_some" },
		func(s *Settings) { s.Channel = "#1,#2,#3,#4,#5,#6,#7,#8,#9,#10,#11" },
		func(s *Settings) { s.ProtectedBranches = []string{"bad..name"} },
	} {
		c := *allEvents(Slack)
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v passed validation", c)
		}
	}
}

func TestPrettyDuration(t *testing.T) {
	for sec, want := range map[int64]string{0: "00:00", 181: "03:01", 3599: "59:59", 3725: "01:02:05"} {
		if got := prettyDuration(sec); got != want {
			t.Errorf("prettyDuration(%d) = %s, want %s", sec, got, want)
		}
	}
}

// A comma-separated list of channels is a post to each, as GitLab's
// channels_for_event: blanks dropped, each channel once.
func TestChannelLists(t *testing.T) {
	s := allEvents(Slack)
	s.Channels = map[string]string{"push": " #dev, #ops ,,#dev,@alice"}
	posts, err := Render(s, gitlab.Push, sample(t, "push"), stamp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range posts {
		got = append(got, p.Channel+"="+Slack.ChannelOf(p.Body))
	}
	if want := []string{"#dev=#dev", "#ops=#ops", "@alice=@alice"}; !slices.Equal(got, want) {
		t.Errorf("posts to %v, want %v", got, want)
	}
	s.Channels, s.Channel = nil, ""
	if posts, _ := Render(s, gitlab.Push, sample(t, "push"), stamp); len(posts) != 1 || posts[0].Channel != "" {
		t.Errorf("no channel set: %d posts (%+v), want one to the webhook's own channel", len(posts), posts)
	}
}

// Google Chat messages of one object share a thread: the thread key goes
// in the URL with GitLab's reply option, and stays in the body so that a
// resend keeps it.
func TestGoogleChatThreads(t *testing.T) {
	for name, key := range map[string]string{
		"issue_open": "issue #23", "note_commit": "commit cfe32cf6", "merge_request_open": "merge request !1",
		"pipeline_failed": "pipeline 31", "push": "push mike/diaspora_master",
	} {
		post, ok := render1(t, allEvents(GoogleChat), chatfixtures.Trigger(name), sample(t, name))
		if !ok {
			t.Fatalf("%s not rendered", name)
		}
		target, err := url.Parse(GoogleChat.Target("https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t", post.Body))
		if err != nil {
			t.Fatal(err)
		}
		q := target.Query()
		if q.Get("threadKey") != key || q.Get("messageReplyOption") != "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" ||
			q.Get("key") != "k" || q.Get("token") != "t" {
			t.Errorf("%s: posted to %s, want threadKey %q", name, target, key)
		}
	}
	if got := Slack.Target("https://hooks.slack.com/services/x", []byte("{}")); got != "https://hooks.slack.com/services/x" {
		t.Errorf("a Slack webhook changed: %s", got)
	}
}
