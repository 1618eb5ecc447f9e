package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/grt-continuation/caddy-webhooks/api"
	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/gitlab"
	"github.com/grt-continuation/caddy-webhooks/webhook"
)

// ingestEvent is one event as a client posts it.
type ingestEvent struct {
	Trigger        string          `json:"trigger"`
	Project        string          `json:"project"`
	Group          string          `json:"group"`
	Ref            string          `json:"ref"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key"`
}

// maxIdempotencyKey bounds a client's Idempotency-Key.
const maxIdempotencyKey = 255

// retryAfterUnavailable is the Retry-After of a 503: Redis and the spool
// both failing is rarely over in less.
const retryAfterUnavailable = "5"

// ingestError is a refusal: a status and GitLab's body for it.
type ingestError struct {
	status int
	body   map[string]any
}

// GitLab answers parameter errors as {"error": …} (Grape) and the rest as
// {"message": …}.
func badRequest(format string, args ...any) *ingestError {
	return &ingestError{http.StatusBadRequest, map[string]any{"error": fmt.Sprintf(format, args...)}}
}

func refusal(status int, msg string) *ingestError {
	return &ingestError{status, map[string]any{"message": msg}}
}

// pendingEvent is one validated event, not yet queued.
type pendingEvent struct {
	ev  *webhook.Event
	key string // idempotency key, "" for none
}

// ServeHTTP answers every request: 202 with the IDs of the events it
// keeps, or a refusal in GitLab's error shape.
func (in *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeIngest(w, http.StatusMethodNotAllowed, map[string]any{"error": "405 Method Not Allowed"})
		return
	}
	// With trust_upstream_auth, a cookie checked by forward_auth would let
	// another site's page post events in the user's name.
	if in.auth.CrossSiteRefused(r) {
		writeIngest(w, http.StatusForbidden, map[string]any{"message": "403 Forbidden - cross-site request refused"})
		return
	}
	caller, ok := in.auth.Authenticate(r)
	if !ok {
		writeIngest(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	defer in.rt.Capturing(time.Now())() // until every event is queued or spooled
	evs, ierr := in.read(w, r, caller)
	if ierr != nil {
		in.logger.Info("ingest request refused", zap.String("caller", caller.Name()), zap.Int("status", ierr.status),
			zap.Any("reason", ierr.body))
		writeIngest(w, ierr.status, ierr.body)
		return
	}

	ids, dups, err := in.queueAll(r.Context(), caller, evs)
	if err != nil {
		w.Header().Set("Retry-After", retryAfterUnavailable)
		writeIngest(w, http.StatusServiceUnavailable, map[string]any{"message": "503 Service Unavailable", "event_ids": ids})
		return
	}
	body := map[string]any{"event_ids": ids}
	if len(dups) > 0 {
		body["duplicate_event_ids"] = dups
	}
	writeIngest(w, http.StatusAccepted, body)
}

// read parses and validates the whole request: every event is checked
// (payload, trigger, paths, scope) before any is queued.
func (in *Handler) read(w http.ResponseWriter, r *http.Request, caller api.Caller) ([]pendingEvent, *ingestError) {
	batch := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, badRequest("Content-Type %q: %v", ct, err)
		case mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl":
			batch = true
		case mt != "application/json":
			return nil, refusal(http.StatusUnsupportedMediaType,
				"415 Unsupported Media Type: send application/json (one event) or application/x-ndjson (a batch)")
		}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.MaxRequest))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, refusal(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	body, err := Decode(r.Header.Get("Content-Encoding"), raw, in.MaxRequest)
	if err != nil {
		var rej *webhook.RejectError
		if errors.As(err, &rej) && rej.Reason == webhook.RejectTooLarge {
			return nil, refusal(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
		}
		return nil, badRequest("%v", err)
	}

	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return nil, badRequest("Idempotency-Key is longer than %d characters", maxIdempotencyKey)
	}
	type line struct {
		n    int // 1-based, blank lines counted, as an editor shows them
		text []byte
	}
	var lines []line
	if batch {
		n := 0
		for l := range bytes.SplitSeq(body, []byte("\n")) {
			if n++; len(bytes.TrimSpace(l)) > 0 {
				lines = append(lines, line{n, l})
			}
		}
		if len(lines) == 0 {
			return nil, badRequest("the batch holds no event")
		}
	} else {
		lines = []line{{1, body}}
	}
	if len(lines) > in.MaxBatch {
		return nil, refusal(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("413 Request Entity Too Large: %d events, at most %d per request (max_batch)", len(lines), in.MaxBatch))
	}

	chain := r.Header.Get(gitlab.HeaderEventUUID)
	now := time.Now()
	out := make([]pendingEvent, 0, len(lines))
	for _, l := range lines {
		where := ""
		if batch {
			where = "line " + strconv.Itoa(l.n) + ": "
		}
		q, ierr := in.event(l.text, caller, chain, now)
		if ierr != nil {
			for k, v := range ierr.body {
				ierr.body[k] = where + v.(string)
			}
			return nil, ierr
		}
		switch {
		case q.key == "" && key != "" && batch:
			q.key = key + "#" + strconv.Itoa(l.n) // each line of a retried batch is its own event
		case q.key == "":
			q.key = key
		}
		out = append(out, q)
	}
	return out, nil
}

// event parses and validates one event.
func (in *Handler) event(line []byte, caller api.Caller, chain string, now time.Time) (pendingEvent, *ingestError) {
	// JSON is UTF-8 (RFC 8259), GitLab's payloads are, and receivers in
	// strict languages refuse anything else: encoding/json would let it
	// through to them.
	// (A lone surrogate escape is only looked for in valid JSON: the
	// decoder names what else is wrong.)
	if !utf8.Valid(line) || json.Valid(line) {
		if at := webhook.InvalidUnicode(line); at >= 0 {
			return pendingEvent{}, badRequest("the event is not valid UTF-8 (at byte %d)", at)
		}
	}
	var e ingestEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return pendingEvent{}, badRequest("not an event object: %v", err)
	}
	if dec.More() {
		return pendingEvent{}, badRequest("one event object is expected (for a batch use Content-Type: application/x-ndjson)")
	}
	switch {
	case e.Trigger == "":
		return pendingEvent{}, badRequest("trigger is missing")
	case len(e.Payload) == 0:
		return pendingEvent{}, badRequest("payload is missing")
	case len(e.IdempotencyKey) > maxIdempotencyKey:
		return pendingEvent{}, badRequest("idempotency_key is longer than %d characters", maxIdempotencyKey)
	case int64(len(e.Payload)) > in.MaxBody:
		engine.CountRejected(webhook.RejectTooLarge)
		return pendingEvent{}, refusal(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("413 Request Entity Too Large: the payload is larger than max_body (%d bytes)", in.MaxBody))
	}
	ev, err := webhook.NewEvent(webhook.Signals{Event: e.Trigger, Project: e.Project, Namespace: e.Group, Ref: e.Ref},
		e.Payload, chain, now)
	if err != nil {
		var rej *webhook.RejectError
		if errors.As(err, &rej) {
			engine.CountRejected(rej.Reason)
			return pendingEvent{}, refusal(http.StatusUnprocessableEntity, rej.Err.Error())
		}
		return pendingEvent{}, refusal(http.StatusInternalServerError, "500 Internal Server Error")
	}
	scope := ev.Project
	if scope == "" { // a group event
		scope = ev.Namespace
	}
	if !caller.May(scope) {
		return pendingEvent{}, refusal(http.StatusForbidden, "403 Forbidden: this token may not emit events for "+scope)
	}
	return pendingEvent{ev: ev, key: e.IdempotencyKey}, nil
}

// ingestParallel bounds the events of one request queued at once: their
// XADDs then share the store's pipelines instead of taking a round trip
// each. The order of a batch's events is their IDs' (assigned line by
// line), which ordered hooks follow, not the order they reach Redis.
const ingestParallel = 32

var errRedisFailedEarlier = errors.New("redis failed for an earlier event of this request")

// queueAll queues every event; ids are those queued (in request order),
// err is set if any could be neither queued nor spooled.
func (in *Handler) queueAll(ctx context.Context, caller api.Caller, evs []pendingEvent) (ids, dups []string, err error) {
	got := make([]string, len(evs))
	dup := make([]bool, len(evs))
	var failed atomic.Bool
	var redisDown atomic.Bool
	sem := make(chan struct{}, ingestParallel)
	var wg sync.WaitGroup
	for i, q := range evs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			id, d, err := in.queue(ctx, caller, q, &redisDown)
			if err != nil {
				failed.Store(true)
				return
			}
			got[i], dup[i] = id, d
		}()
	}
	wg.Wait()
	for i, id := range got {
		if id == "" {
			continue
		}
		ids = append(ids, id)
		if dup[i] {
			dups = append(dups, id)
		}
	}
	if failed.Load() {
		return ids, dups, errors.New("neither redis nor the spool took every event")
	}
	return ids, dups, nil
}

// queue makes one event durable: in Redis, else in the spool. A repeated
// idempotency key answers with the first event's ID instead. Once Redis
// fails, the rest of the request goes to the spool without waiting on it
// again (redisDown is shared by the request's events).
func (in *Handler) queue(reqCtx context.Context, caller api.Caller, q pendingEvent, redisDown *atomic.Bool) (id string, dup bool, err error) {
	// The client going away must not stop an event half-way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), time.Duration(in.EnqueueTimeout))
	defer cancel()
	var redisErr error
	claimed := false
	// Found down earlier (by any capture or request): Enqueue refuses at
	// once, and the key check would wait for Redis.
	known := in.rt.RedisDown()
	if q.key != "" && !known && !redisDown.Load() {
		first, err := in.claimKey(ctx, caller, q.key, q.ev.ID)
		switch {
		case err != nil:
			redisErr = err
			redisDown.Store(true)
			in.rt.RedisFailed(err)
			in.logger.Warn("idempotency key not checked: redis did not answer", zap.String("event_id", q.ev.ID), zap.Error(err))
		case first != q.ev.ID:
			return first, true, nil
		default:
			claimed = true
		}
	}
	if known || !redisDown.Load() {
		if redisErr = in.rt.Enqueue(ctx, q.ev); redisErr == nil {
			return q.ev.ID, false, nil
		}
		redisDown.Store(true)
	}
	if redisErr == nil {
		redisErr = errRedisFailedEarlier
	}
	if SpoolEvent(in.spool, in.logger, q.ev, redisErr) {
		return q.ev.ID, false, nil
	}
	if claimed { // let the client's retry through
		in.releaseKey(caller, q.key, q.ev.ID)
	}
	return "", false, errors.New("neither redis nor the spool took the event")
}

func writeIngest(w http.ResponseWriter, status int, body map[string]any) {
	api.WriteJSON(w, status, body)
}
