package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// chainScript registers an event's hooks in its recursion chain: a hook
// already triggered in the chain by another event (0), or a chain that
// reached its limit of hooks (2), is refused; a replay of the same event
// is not recursion.
var chainScript = redis.NewScript(`
-- KEYS: chain; ARGV: event id, ttl ms, max hooks, hook ids...
local out = {}
for i = 4, #ARGV do
  local prev = redis.call('HGET', KEYS[1], ARGV[i])
  if prev and prev ~= ARGV[1] then
    out[#out + 1] = 0
  elseif not prev and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
    out[#out + 1] = 2
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    out[#out + 1] = 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return out
`)

// ChainCheck asks which hooks an event may trigger in its recursion chain.
type ChainCheck struct {
	Chain, EventID string
	HookIDs        []int64
}

// ChainVerdict says whether an event may trigger a hook in its chain.
type ChainVerdict int

// Chain verdicts (the chain script's return values).
const (
	ChainRecursive ChainVerdict = 0 // the chain already triggered the hook
	ChainAllowed   ChainVerdict = 1
	ChainTooLong   ChainVerdict = 2 // the chain triggered too many hooks
)

// CheckChains registers each event's hooks in its chain, in one round trip,
// and returns a verdict per hook. The script goes by hash; only a node
// that lost it (restarted, failed over) costs a second round trip, with
// the calls it refused sent in full.
func (s *Store) CheckChains(ctx context.Context, checks []ChainCheck, ttl time.Duration, maxHooks int) ([][]ChainVerdict, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(checks))
	run := func(eval bool, which []int) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range which {
				c := checks[i]
				args := []any{c.EventID, ttl.Milliseconds(), maxHooks}
				for _, id := range c.HookIDs {
					args = append(args, id)
				}
				cmds[i] = runScript(ctx, p, chainScript, eval, []string{s.keys.Chain(c.Chain)}, args...)
			}
			return nil
		})
		return err
	}
	all := make([]int, len(checks))
	for i := range all {
		all[i] = i
	}
	err := run(false, all)
	var missing []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		err = run(true, missing)
	}
	if err != nil {
		return nil, fmt.Errorf("checking recursion chains: %w", err)
	}
	out := make([][]ChainVerdict, len(cmds))
	for i, c := range cmds {
		vs, err := c.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("checking recursion chain: %w", err)
		}
		out[i] = make([]ChainVerdict, len(vs))
		for j, v := range vs {
			out[i][j] = ChainVerdict(v)
		}
	}
	return out, nil
}
