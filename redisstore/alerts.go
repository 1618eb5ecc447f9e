package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Alerts is what the operator's alerts share across processes: the count
// of each hook's dead letters until they are alerted (rolled up, at most
// one alert per hook per interval), and gates that let one alert of a
// kind through per interval.
type Alerts struct{ *conn }

// DeadCount is the dead letters of one hook counted by a process since
// its last flush.
type DeadCount struct {
	HookID  int64
	Count   int
	Reasons map[string]int
	// First is the first event given up on, and Since when.
	First string
	Since time.Time
}

// AddDead adds the counts of one process to the shared ones.
func (a *Alerts) AddDead(ctx context.Context, counts []DeadCount) error {
	if len(counts) == 0 {
		return nil
	}
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range counts {
			k := a.keys.AlertsDead(c.HookID)
			p.HIncrBy(ctx, k, "count", int64(c.Count))
			for r, n := range c.Reasons {
				p.HIncrBy(ctx, k, "r:"+r, int64(n))
			}
			p.HSetNX(ctx, k, "first", c.First)
			p.HSetNX(ctx, k, "since", c.Since.UnixMilli())
			p.PExpire(ctx, k, 7*24*time.Hour)
			p.SAdd(ctx, a.keys.AlertsDeadPending(), c.HookID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("counting dead letters for alerts: %w", err)
	}
	return nil
}

// TakeDead returns the dead letters counted for the hooks whose gate is
// open (one alert per hook per interval), and takes them off the counts.
func (a *Alerts) TakeDead(ctx context.Context, interval time.Duration) ([]DeadCount, error) {
	members, err := a.rdb.SMembers(ctx, a.keys.AlertsDeadPending()).Result()
	if err != nil {
		return nil, fmt.Errorf("reading dead letters to alert: %w", err)
	}
	cmds, err := runScripts(ctx, a.rdb, len(members), func(p redis.Pipeliner, eval bool, i int) *redis.Cmd {
		id, _ := strconv.ParseInt(members[i], 10, 64)
		return alertTakeScript.queue(ctx, p, eval,
			[]string{a.keys.AlertsDead(id), a.keys.AlertGate("dead:" + members[i]), a.keys.AlertsDeadPending()},
			interval.Milliseconds(), members[i])
	})
	if err != nil {
		return nil, fmt.Errorf("taking dead letters to alert: %w", err)
	}
	var out []DeadCount
	for i, c := range cmds {
		v, _ := c.StringSlice()
		if len(v) == 0 {
			continue
		}
		id, _ := strconv.ParseInt(members[i], 10, 64)
		d := DeadCount{HookID: id, Reasons: map[string]int{}}
		for j := 0; j+1 < len(v); j += 2 {
			n, _ := strconv.Atoi(v[j+1])
			switch f := v[j]; {
			case f == "count":
				d.Count = n
			case f == "first":
				d.First = v[j+1]
			case f == "since":
				ms, _ := strconv.ParseInt(v[j+1], 10, 64)
				d.Since = time.UnixMilli(ms)
			case strings.HasPrefix(f, "r:"):
				d.Reasons[f[2:]] = n
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// Gate opens for one caller per interval (across processes): it reports
// whether this caller may send the alert name now.
func (a *Alerts) Gate(ctx context.Context, name string, interval time.Duration) (bool, error) {
	ok, err := a.rdb.SetNX(ctx, a.keys.AlertGate(name), "1", interval).Result()
	if err != nil {
		return false, fmt.Errorf("opening the gate of alert %s: %w", name, err)
	}
	return ok, nil
}
