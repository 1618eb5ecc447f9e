package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An ordered hook made through the API: the field round-trips, and while
// its first delivery fails, the API and the admin endpoint show the hook
// blocked, by which event, and how many deliveries wait behind it.
func TestOrderedHookThroughTheAPI(t *testing.T) {
	f := startAPIFixture(t)
	var requests atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)

	code, body, _ := f.raw(t, http.MethodPost, "/api/v4/projects/acme%2Fapi/hooks", apiAdminToken, "application/json",
		[]byte(`{"url":"`+failing.URL+`/ordered","push_events":true,"ordered":true}`))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var hook struct {
		ID           int64 `json:"id"`
		Ordered      bool  `json:"ordered"`
		OrderedQueue *struct {
			Pending   int `json:"pending"`
			BlockedBy *struct {
				EventID    string `json:"event_id"`
				Attempts   int    `json:"attempts"`
				LastStatus string `json:"last_status"`
				NextAt     string `json:"next_attempt_at"`
			} `json:"blocked_by"`
		} `json:"ordered_queue"`
	}
	if err := json.Unmarshal([]byte(body), &hook); err != nil || !hook.Ordered || hook.OrderedQueue == nil ||
		hook.OrderedQueue.Pending != 0 || hook.OrderedQueue.BlockedBy != nil {
		t.Fatalf("created hook: %v %s", err, body)
	}
	path := "/api/v4/projects/acme%2Fapi/hooks/" + jsonNumber(hook.ID)
	for _, ref := range []string{"refs/heads/a", "refs/heads/b", "refs/heads/c"} {
		f.event(t, ref)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, _ = f.raw(t, http.MethodGet, path, apiAdminToken, "", nil)
		hook.OrderedQueue = nil
		if err := json.Unmarshal([]byte(body), &hook); err != nil {
			t.Fatal(err)
		}
		if q := hook.OrderedQueue; q != nil && q.BlockedBy != nil && q.Pending == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook never showed blocked with 3 pending: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := hook.OrderedQueue.BlockedBy
	if b.LastStatus != "503" || b.Attempts != 1 || b.EventID == "" || b.NextAt == "" {
		t.Errorf("blocked_by = %+v", b)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the receiver got %d requests: the deliveries behind the failed head went out", n)
	}
	resp, err := http.Get(adminBase + "/webhooks/hooks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hooks []struct {
		ID           int64 `json:"id"`
		Ordered      bool  `json:"ordered"`
		OrderedQueue *struct {
			Pending   int `json:"pending"`
			BlockedBy *struct {
				EventID string `json:"event_id"`
			} `json:"blocked_by"`
		} `json:"ordered_queue"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&hooks); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range hooks {
		if h.ID == hook.ID {
			found = true
			if !h.Ordered || h.OrderedQueue == nil || h.OrderedQueue.Pending != 3 || h.OrderedQueue.BlockedBy == nil ||
				h.OrderedQueue.BlockedBy.EventID != b.EventID {
				t.Errorf("admin hooks shows %+v", h)
			}
		}
	}
	if !found {
		t.Fatalf("admin hooks lacks hook %d", hook.ID)
	}
	// Made unordered, the hook still shows the queue it has left.
	code, body, _ = f.raw(t, http.MethodPut, path, apiAdminToken, "application/json", []byte(`{"ordered":false}`))
	if code != http.StatusOK || !strings.Contains(body, `"ordered":false`) || !strings.Contains(body, `"pending":3`) {
		t.Fatalf("edit: %d %s", code, body)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
