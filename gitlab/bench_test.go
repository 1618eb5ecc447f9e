package gitlab

import (
	"net/http"
	"testing"
)

// BenchmarkBranchFilter is the branch filter check of each push event and
// candidate hook.
func BenchmarkBranchFilter(b *testing.B) {
	for _, tc := range []struct{ name, strategy, filter string }{
		{"all_branches", StrategyAllBranches, ""},
		{"wildcard-exact", StrategyWildcard, "main"},
		{"wildcard-star", StrategyWildcard, "release-*-stable"},
		{"regex", StrategyRegex, "^(feature|hotfix)/"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := NewBranchFilter(tc.strategy, tc.filter)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Match("refs/heads/release-18-6-stable")
			}
		})
	}
}

// BenchmarkDeliveryHeadersApply builds the headers of one delivery, with
// two custom headers.
func BenchmarkDeliveryHeadersApply(b *testing.B) {
	d := DeliveryHeaders{Trigger: Push, UserAgent: "GitLab/18.6.0", Instance: "https://forge.example.com",
		Token: "secret", WebhookUUID: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", EventUUID: "0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f7",
		IdempotencyKey: "5b6a0192-f3c4-7c8d-9e0f-a1b2c3d4e5f6", Custom: map[string]string{"X-Team": "platform", "X-Env": "prod"}}
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 12)
		d.Apply(h)
	}
}
