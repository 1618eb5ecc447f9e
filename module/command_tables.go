package module

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The tables `caddy webhooks` prints for people (--json prints the admin
// API's JSON): one row per item, columns aligned, headers in capitals as
// kubectl writes them, times in UTC.

// tableFunc prints an admin answer as a table.
type tableFunc func(w io.Writer, raw []byte) error

// table writes rows under header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// decode reads an admin answer into v.
func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}

// when writes a time in UTC to the second; "-" for none.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func statsTable(w io.Writer, raw []byte) error {
	var s struct {
		Events, Ready, Scheduled int64
		DeadLetters              int64 `json:"dead_letters"`
		Paused, Silent           bool
	}
	if err := decode(raw, &s); err != nil {
		return err
	}
	return table(w, []string{"EVENTS", "READY", "SCHEDULED", "DEAD LETTERS", "PAUSED", "SILENT MODE"},
		[][]string{{strconv.FormatInt(s.Events, 10), strconv.FormatInt(s.Ready, 10), strconv.FormatInt(s.Scheduled, 10),
			strconv.FormatInt(s.DeadLetters, 10), yesNo(s.Paused), yesNo(s.Silent)}})
}

func hooksTable(w io.Writer, raw []byte) error {
	var hooks []hookInfo
	if err := decode(raw, &hooks); err != nil {
		return err
	}
	rows := make([][]string, 0, len(hooks))
	for _, h := range hooks {
		scope := "project " + h.Project
		switch {
		case h.Operator:
			scope = "alerts"
		case h.Group != "":
			scope = "group " + h.Group
		}
		status := strings.ReplaceAll(h.AlertStatus, "_", " ")
		if h.DisabledUntil != nil {
			status += " until " + when(h.DisabledUntil)
		}
		order := "-"
		if q := h.OrderedQueue; q != nil {
			order = fmt.Sprintf("%d waiting", q.Pending)
			if b := q.BlockedBy; b != nil {
				order += fmt.Sprintf(", blocked by %s since %s (%d attempts, last %s)", b.EventID, when(&b.Since), b.Attempts, b.LastStatus)
			}
		}
		source := "api"
		if h.Configured {
			source = "config"
		}
		rows = append(rows, []string{strconv.FormatInt(h.ID, 10), orDash(h.Name), scope, source, status,
			strconv.Itoa(h.Failures), order, h.URL})
	}
	return table(w, []string{"ID", "NAME", "SCOPE", "FROM", "STATUS", "FAILURES", "ORDERED", "URL"}, rows)
}

func eventsTable(w io.Writer, raw []byte) error {
	var es []attempt
	if err := decode(raw, &es); err != nil {
		return err
	}
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		rows = append(rows, []string{strconv.FormatInt(e.ID, 10), when(&e.At), e.Kind, e.Trigger, e.Status,
			strconv.FormatFloat(e.Duration*1000, 'f', 1, 64) + "ms", e.EventID, orDash(e.Error)})
	}
	return table(w, []string{"ID", "AT", "KIND", "TRIGGER", "STATUS", "DURATION", "EVENT", "ERROR"}, rows)
}

func deadLettersTable(w io.Writer, raw []byte) error {
	var ds []deadLetter
	if err := decode(raw, &ds); err != nil {
		return err
	}
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		rows = append(rows, []string{d.ID, when(&d.At), strconv.FormatInt(d.HookID, 10), d.Trigger, strconv.Itoa(d.Attempt),
			d.EventID, d.Reason})
	}
	return table(w, []string{"ID", "AT", "HOOK", "TRIGGER", "ATTEMPTS", "EVENT", "REASON"}, rows)
}

func redrivenTable(w io.Writer, raw []byte) error {
	var r struct{ Redriven int }
	if err := decode(raw, &r); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letters put back in the queue\n", r.Redriven)
	return err
}

func pausedTable(w io.Writer, raw []byte) error {
	var p struct{ Paused bool }
	if err := decode(raw, &p); err != nil {
		return err
	}
	msg := "Deliveries go again in every instance."
	if p.Paused {
		msg = "Deliveries are held back in every instance (they stay queued); resume lets them go."
	}
	_, err := fmt.Fprintln(w, msg)
	return err
}

// replayJob is a replay (or a dry run's plan) as the admin API shows it.
type replayJob struct {
	ID       int64
	State    string
	Status   string
	Since    time.Time
	Until    time.Time
	Hooks    []int64
	Matched  int
	ByHook   map[string]int `json:"by_hook"`
	Skipped  map[string]int
	Notes    []string
	Sent     int
	Queued   int
	Gone     int
	Created  *time.Time `json:"created_at"`
	Finished *time.Time `json:"finished_at"`
}

// replayTable prints what POST /webhooks/replays answered: a dry run's
// count by hook, or the replay made.
func replayTable(w io.Writer, raw []byte) error {
	var j replayJob
	if err := decode(raw, &j); err != nil {
		return err
	}
	switch {
	case j.ID != 0:
		fmt.Fprintf(w, "Replay %d queued: %d deliveries (%s, %s to %s), sent behind live deliveries.\n",
			j.ID, j.Matched, j.Status, when(&j.Since), when(&j.Until))
	case j.Matched == 0:
		fmt.Fprintf(w, "Nothing to send (%s, %s to %s).\n", j.Status, when(&j.Since), when(&j.Until))
	default:
		fmt.Fprintf(w, "Dry run: %d deliveries would be sent (%s, %s to %s).\n", j.Matched, j.Status, when(&j.Since), when(&j.Until))
	}
	if len(j.ByHook) > 1 || j.ID == 0 {
		ids := make([]string, 0, len(j.ByHook))
		for id := range j.ByHook {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b string) int {
			x, _ := strconv.ParseInt(a, 10, 64)
			y, _ := strconv.ParseInt(b, 10, 64)
			return int(x - y)
		})
		rows := make([][]string, 0, len(ids))
		for _, id := range ids {
			rows = append(rows, []string{id, strconv.Itoa(j.ByHook[id])})
		}
		if len(rows) > 0 {
			fmt.Fprintln(w)
			if err := table(w, []string{"HOOK", "DELIVERIES"}, rows); err != nil {
				return err
			}
		}
	}
	for reason, n := range j.Skipped {
		fmt.Fprintf(w, "Left out: %d (%s).\n", n, reason)
	}
	for _, n := range j.Notes {
		fmt.Fprintf(w, "Note: %s.\n", n)
	}
	return nil
}

// replaysTable prints replays (a list, or one).
func replaysTable(w io.Writer, raw []byte) error {
	var js []replayJob
	if len(raw) > 0 && raw[0] == '{' {
		var j replayJob
		if err := decode(raw, &j); err != nil {
			return err
		}
		js = []replayJob{j}
	} else if err := decode(raw, &js); err != nil {
		return err
	}
	rows := make([][]string, 0, len(js))
	for _, j := range js {
		rows = append(rows, []string{strconv.FormatInt(j.ID, 10), j.State, j.Status, when(&j.Since) + " to " + when(&j.Until),
			strconv.Itoa(j.Matched), strconv.Itoa(j.Sent), strconv.Itoa(j.Queued), strconv.Itoa(j.Gone), when(j.Created), when(j.Finished)})
	}
	return table(w, []string{"ID", "STATE", "STATUS", "RANGE", "MATCHED", "SENT", "QUEUED", "GONE", "CREATED", "FINISHED"}, rows)
}
