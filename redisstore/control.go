package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Depths are the entries in each queue of the namespace.
type Depths struct {
	Events, Ready, Scheduled, Dead int64
}

// QueueDepths counts the entries of every queue, over all shards.
func (s *Store) QueueDepths(ctx context.Context) (Depths, error) {
	cmds := make([][4]*redis.IntCmd, s.readShards())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = [4]*redis.IntCmd{p.XLen(ctx, s.keys.Events(i)), p.XLen(ctx, s.keys.Ready(i)),
				p.ZCard(ctx, s.keys.Schedule(i)), p.XLen(ctx, s.keys.Dead(i))}
		}
		return nil
	})
	if err != nil {
		return Depths{}, fmt.Errorf("reading queue depths: %w", err)
	}
	var d Depths
	for _, c := range cmds {
		d.Events += c[0].Val()
		d.Ready += c[1].Val()
		d.Scheduled += c[2].Val()
		d.Dead += c[3].Val()
	}
	return d, nil
}

// Paused reads the operator pause shared by every process.
func (s *Store) Paused(ctx context.Context) (bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.Paused()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("reading the pause flag: %w", err)
	}
	return v == "1", nil
}

// SetPaused pauses (or resumes) deliveries in every process.
func (s *Store) SetPaused(ctx context.Context, paused bool) error {
	var err error
	if paused {
		err = s.rdb.Set(ctx, s.keys.Paused(), "1", 0).Err()
	} else {
		err = s.rdb.Del(ctx, s.keys.Paused()).Err()
	}
	if err != nil {
		return fmt.Errorf("setting the pause flag: %w", err)
	}
	return nil
}
