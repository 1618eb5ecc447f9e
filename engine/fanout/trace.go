package fanout

import (
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// traceFanOut records the fan-out span of each event of msgs that was
// captured in a trace (tracing.Spans.FanOut); out is their fan-out, done
// since start.
func (f *Fanout) traceFanOut(msgs []redisstore.EventMsg, out []redisstore.Fanned, start time.Time) {
	for i := range msgs {
		ev := &msgs[i].Event
		if msgs[i].Err != nil || ev.Trace.IsZero() || out[i].Already {
			continue
		}
		queued := len(out[i].Deliveries)
		for _, v := range out[i].Verdicts {
			if v != redisstore.ChainAllowed {
				queued--
			}
		}
		f.spans.FanOut(ev, out[i].Checked, queued, start)
	}
}

// traceCapture records the fan-out span of an event captured in a trace
// and fanned out at once (Capture); c is its fan-out, done since start.
func (f *Fanout) traceCapture(c *redisstore.Captured, start time.Time) {
	if c.Event.Trace.IsZero() {
		return
	}
	queued := len(c.Deliveries)
	for _, v := range c.Verdicts {
		if v != redisstore.ChainAllowed {
			queued--
		}
	}
	f.spans.FanOut(c.Event, c.Checked, queued, start)
}
