package chat

import (
	"fmt"
	"strings"
	"time"
)

// alertColor is the attachment colour of GitLab's alert messages.
const alertColor = "#C95823"

// alert writes GitLab's AlertMessage: "Alert firing in <project>", the
// alert linked, with its severity, event count, status and start.
func (w *writer) alert() *message {
	p, a := w.p, &w.p.ObjectAttributes
	summary := "Alert firing in " + w.st.text(p.projectName())
	return &message{summary: summary, details: summary,
		attachments: []attachment{{Title: w.st.text(a.Title), TitleLink: a.URL, Color: alertColor, Fields: []field{
			{Title: "Severity", Value: humanize(a.Severity), Short: true},
			{Title: "Events", Value: fmt.Sprint(orEmpty(a.Events)), Short: true},
			{Title: "Status", Value: humanize(a.Status), Short: true},
			{Title: "Start time", Value: alertTime(a.StartedAt), Short: true},
		}}}}
}

// vulnerability writes GitLab's VulnerabilityMessage (Enterprise Edition,
// ee/app/models/integrations/chat_message/vulnerability_message.rb):
// "Vulnerability detected in <project>", and one attachment, the
// vulnerability's title linked, with its severity and identifiers. An
// identifier without a URL is its name alone: GitLab would print the
// Markdown of an empty link, "[name]()".
func (w *writer) vulnerability() *message {
	a, st := &w.p.ObjectAttributes, w.st
	ids := make([]string, 0, len(a.Identifiers))
	for _, id := range a.Identifiers {
		if id.URL != "" {
			ids = append(ids, st.link(id.Name, id.URL))
		} else {
			ids = append(ids, st.text(id.Name))
		}
	}
	return &message{summary: "Vulnerability detected in " + w.projectLink(),
		attachments: []attachment{{Title: st.text(a.Title), TitleLink: a.URL, Color: alertColor, Fields: []field{
			{Title: "Severity", Value: humanize(a.Severity), Short: true},
			{Title: "Identifiers", Value: strings.Join(ids, ", "), Short: true},
		}}}}
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	if f, ok := v.(float64); ok {
		return idText(f)
	}
	return v
}

// humanize is Rails' String#humanize: underscores to spaces, the first
// letter capital, the rest lower case.
func humanize(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "_", " "))
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// alertTime is GitLab's alert start time: "April 23rd, 2020  1:06AM UTC"
// (strftime "%B <ordinal day>, %Y %l:%M%p %Z").
func alertTime(v string) string {
	var t time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700"} {
		if t, err = time.Parse(layout, v); err == nil {
			break
		}
	}
	if err != nil {
		return v
	}
	t = t.UTC()
	return fmt.Sprintf("%s %s, %d %2d:%02d%s UTC", t.Month(), ordinal(t.Day()), t.Year(), hour12(t.Hour()), t.Minute(),
		strings.ToUpper(t.Format("PM")))
}

func hour12(h int) int {
	if h%12 == 0 {
		return 12
	}
	return h % 12
}

// ordinal is Rails' Integer#ordinalize.
func ordinal(d int) string {
	suffix := "th"
	if d%100 < 11 || d%100 > 13 {
		switch d % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprintf("%d%s", d, suffix)
}
