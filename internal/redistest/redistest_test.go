package redistest

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A port is picked free and bound by redis-server a moment later; when
// another test's server took it meanwhile, the new server must not pass
// for started because the other one answers PING there: it starts on
// another port, and each test talks to its own server.
func TestStartTakesAnotherPortWhenItsPortWasTaken(t *testing.T) {
	other := Start(t)
	taken := []int{other.port} // picked first, as if the other took it after the pick
	pickPort = func(tb testing.TB) int {
		if len(taken) > 0 {
			p := taken[0]
			taken = taken[1:]
			return p
		}
		return freePort(tb)
	}
	t.Cleanup(func() { pickPort = freePort })

	s := Start(t)
	if s.Addr == other.Addr {
		t.Fatalf("the new server passed for started on %s, where another server listens", s.Addr)
	}
	ctx := context.Background()
	mine, theirs := s.Client(), other.Client()
	defer mine.Close()
	defer theirs.Close()
	if err := mine.Set(ctx, "whose", "mine", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := theirs.Get(ctx, "whose").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("the other server holds what this test wrote: %q, %v", v, err)
	}
}
