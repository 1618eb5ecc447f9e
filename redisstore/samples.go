package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// Samples are the latest payload of each trigger of each project, which a
// test request sends, as GitLab's "Test" sends the project's latest push.
type Samples struct{ *conn }

// Keep remembers several events at once (one round trip), each as the
// latest of its project and trigger.
func (s *Samples) Keep(ctx context.Context, evs []*webhook.Event, ttl time.Duration) error {
	if len(evs) == 0 {
		return nil
	}
	// Only the last of a batch's events per key survives: set only that one.
	last := make(map[string]*webhook.Event, len(evs))
	var order []string
	for _, e := range evs {
		k := s.keys.LatestEvent(e.Project, e.Trigger)
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = e
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range order {
			p.Set(ctx, k, last[k].Body, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remembering the latest events: %w", err)
	}
	return nil
}

// Latest returns the payload Keep remembered, or nil.
func (s *Samples) Latest(ctx context.Context, project, trigger string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.LatestEvent(project, trigger)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the latest %s event of %s: %w", trigger, project, err)
	}
	return b, nil
}
