package gitlab

import "testing"

func TestParseTriggerAcceptsEveryGitLabSpelling(t *testing.T) {
	cases := map[string]Trigger{
		"push": Push, "push_events": Push, "push_hooks": Push, "Push Hook": Push, "PUSH": Push,
		"tag_push": TagPush, "Tag Push Hook": TagPush,
		"issues": Issues, "issue": Issues, "Issue Hook": Issues,
		"confidential_issues_events": ConfidentialIssues, "Confidential Issue Hook": ConfidentialIssues,
		"merge_request": MergeRequests, "merge_requests_events": MergeRequests, "Merge Request Hook": MergeRequests,
		"build": Job, "job_events": Job, "Job Hook": Job,
		"release": Releases, "Release Hook": Releases,
		"member": Member, "Member Hook": Member, "subgroup_events": Subgroup, "Project Hook": Project,
		"resource_access_token": ResourceAccessToken, "Resource Access Token Hook": ResourceAccessToken,
	}
	for in, want := range cases {
		got, ok := ParseTrigger(in)
		if !ok || got != want {
			t.Errorf("ParseTrigger(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "pushes", "System Hook", "repository_update"} {
		if got, ok := ParseTrigger(bad); ok {
			t.Errorf("ParseTrigger(%q) = %q, want unknown", bad, got)
		}
	}
}

func TestEventHeadersAsGitLab(t *testing.T) {
	want := map[Trigger]string{
		Push: "Push Hook", TagPush: "Tag Push Hook", Issues: "Issue Hook",
		ConfidentialIssues: "Confidential Issue Hook", Note: "Note Hook",
		ConfidentialNote: "Confidential Note Hook", MergeRequests: "Merge Request Hook",
		WikiPage: "Wiki Page Hook", Pipeline: "Pipeline Hook", Job: "Job Hook",
		Deployment: "Deployment Hook", FeatureFlag: "Feature Flag Hook", Releases: "Release Hook",
		Milestone: "Milestone Hook", Emoji: "Emoji Hook",
		ResourceAccessToken: "Resource Access Token Hook", Member: "Member Hook",
		Subgroup: "Subgroup Hook", Project: "Project Hook",
	}
	for tr, h := range want {
		if got := tr.EventHeader(); got != h {
			t.Errorf("%s.EventHeader() = %q, want %q", tr, got, h)
		}
	}
	for _, tr := range []Trigger{Member, Subgroup, Project} {
		if !tr.GroupOnly() {
			t.Errorf("%s should be group-only", tr)
		}
	}
	if Push.GroupOnly() {
		t.Error("push is not group-only")
	}
}

func TestTriggerSet(t *testing.T) {
	var s TriggerSet
	s.Add(Push)
	s.Add(Member)
	s.Add("nonsense")
	if !s.Has(Push) || !s.Has(Member) || s.Has(TagPush) || s.Has("nonsense") {
		t.Fatalf("set membership wrong: %v", s.List())
	}
	if got := s.List(); len(got) != 2 || got[0] != Push || got[1] != Member {
		t.Fatalf("List() = %v", got)
	}
}
