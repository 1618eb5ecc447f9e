package webhook

import "testing"

// BenchmarkIdempotencyKey is computed for every delivery attempt.
func BenchmarkIdempotencyKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = IdempotencyKey("0192f3c4-5b6a-7c8d-9e0f-a1b2c3d4e5f6", 12345)
	}
}
