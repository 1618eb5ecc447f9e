package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/internal/redistest"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Shards write their dead letters with their own stream IDs, so two shards
// often hold the same ID (one dead letter each in the same millisecond).
// Paged by the last ID of each page, the list still gives every dead
// letter exactly once, oldest first, whatever the page size, and redrives
// each by its ID.
func TestDeadLettersWithEqualIDsInSeveralShardsPageOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := New(Options{URL: srv.URL, Namespace: "dl", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	// IDs 1000-0, 1000-1 and 1001-0 in every shard, and 999-0 in shard 3.
	var want []string
	add := func(shard int, id string) {
		d := webhook.Delivery{EventID: fmt.Sprintf("ev-%d-%s", shard, id), HookID: 1, Trigger: "push", At: time.UnixMilli(1000),
			Body: []byte(`{}`), Attempt: 1}
		err := s.c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.c.keys.Dead(shard), ID: id,
			Values: []any{"d", EncodeDelivery(&d), "reason", "refused", "at", 1000, "n", 10}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	add(3, "999-0")
	want = append(want, "999-0@3")
	for _, id := range []string{"1000-0", "1000-1", "1001-0"} {
		for sh := range 4 {
			add(sh, id)
			want = append(want, deadID(sh, id))
		}
	}
	for _, page := range []int64{1, 2, 3, 4, 5, 13, 100} {
		var got []string
		for after, n := "-", 0; n < 100; n++ {
			dls, err := s.DeadLetters().List(ctx, after, page)
			if err != nil {
				t.Fatal(err)
			}
			if len(dls) == 0 {
				break
			}
			for _, d := range dls {
				got = append(got, d.ID)
			}
			after = dls[len(dls)-1].ID
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages of %d list %v\nwant %v", page, got, want)
		}
	}
	if n, err := s.DeadLetters().Redrive(ctx, want...); err != nil || n != len(want) {
		t.Fatalf("redrive: %d, %v", n, err)
	}
	for sh := range 4 {
		if n, _ := s.c.rdb.XLen(ctx, s.c.keys.Dead(sh)).Result(); n != 0 {
			t.Errorf("shard %d keeps %d dead letters after redriving them all", sh, n)
		}
	}
}
