package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Unreachable tells whether err says Redis could not be reached: a
// refused, reset or closed connection, a dial or I/O timeout, no free
// connection in time, or a deadline that ran out while waiting for Redis.
// Errors Redis answered with (WRONGTYPE, OOM, LOADING, too few replica
// acknowledgements), a caller that gave up (cancelled) and a closed store
// are not: waiting for Redis would not have helped, or no one waits.
func Unreachable(err error) bool {
	var rerr redis.Error
	var nerr net.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed):
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &rerr):
		return false // an answer
	}
	return errors.As(err, &nerr)
}

// reachable checks cheaply that Redis answers: a PING, to every master of
// a Cluster (events may go to any of them). An error Redis answers with
// (NOPERM, LOADING) is an answer: reachable returns nil.
func (c *conn) reachable(ctx context.Context) error {
	if c, ok := c.rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return unanswered(m.Ping(ctx).Err())
		})
	}
	return unanswered(c.rdb.Ping(ctx).Err())
}

// unanswered is err unless Redis answered with it.
func unanswered(err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return nil
	}
	return err
}
