package delivery

import (
	"testing"
	"time"

	"github.com/grt-continuation/caddy-webhooks/redisstore"
)

// TestDisabledViewKeepsADisableNotedDuringARefresh: a copy of the disabled
// hooks read from Redis just before a settle here disabled a hook must not
// undo the note, or the hook gets requests until the next refresh; a
// disable the copy already holds, and a copy read after, are the copy's.
func TestDisabledViewKeepsADisableNotedDuringARefresh(t *testing.T) {
	now := time.Now()
	var v disabledView
	since := v.generation() // the refresh starts reading
	v.note(7, redisstore.Settled{Disabled: true}, false)
	v.note(8, redisstore.Settled{DisabledUntil: now.Add(time.Minute)}, false)
	v.replace(map[int64]time.Time{9: {}}, since) // read before the settles
	for _, id := range []int64{7, 8, 9} {
		if !v.maybe(id, now) {
			t.Errorf("hook %d not in the view after the refresh", id)
		}
	}
	// A refresh that began after the notes installs what Redis says: hook 8
	// was re-enabled meanwhile.
	v.replace(map[int64]time.Time{7: {}}, v.generation())
	if !v.maybe(7, now) || v.maybe(8, now) {
		t.Errorf("a later copy: hook 7 disabled %v (want true), hook 8 %v (want false)", v.maybe(7, now), v.maybe(8, now))
	}
	// A hook re-enabled here before the copy lands is not put back.
	since = v.generation()
	v.note(5, redisstore.Settled{Disabled: true}, false)
	v.forget(5)
	v.replace(nil, since)
	if v.maybe(5, now) {
		t.Error("hook 5, re-enabled here, is back in the view")
	}
}
