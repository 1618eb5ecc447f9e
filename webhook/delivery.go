package webhook

import (
	"encoding/json"
	"time"
)

// Delivery is one (event, hook) pair waiting to be sent. The store keeps it
// as one JSON document, so the same bytes move between the ready stream,
// the retry schedule and the dead letters.
type Delivery struct {
	EventID string `json:"ev"`
	HookID  int64  `json:"hook"`
	Trigger string `json:"trigger"`
	Chain   string `json:"chain"`
	// At is when the event was captured; latency and age are measured from it.
	At time.Time `json:"-"`
	// Body is the JSON payload, stored as is (it was validated at capture).
	Body json.RawMessage `json:"body"`
	// Attempt counts attempts so far, from 1.
	Attempt int `json:"att"`

	// AtMs is At in the stored form.
	AtMs int64 `json:"at"`
}
