package chat

import "fmt"

// groupMention writes GitLab's GroupMentionMessage: "Group <group> was
// mentioned in <issue #1> of <project>: *<title>*", with the description
// or comment. nil when the mention is in something else.
func (w *writer) groupMention() *message {
	p, st, a := w.p, w.st, &w.p.ObjectAttributes
	if p.Mentioned == nil {
		return nil
	}
	var source, title, detail string
	switch a.ObjectKind {
	case "issue":
		source, title, detail = "issue #"+idText(a.IID), a.Title, a.Description
	case "merge_request":
		source, title, detail = "merge request !"+idText(a.IID), a.Title, a.Description
	case "note":
		switch {
		case p.Commit != nil:
			source, title = "commit "+shortSHA(p.Commit.ID), p.Commit.commitTitle()
		case p.Issue != nil:
			source, title = "issue #"+idText(p.Issue.IID), p.Issue.Title
		case p.MergeRequest != nil:
			source, title = "merge request !"+idText(p.MergeRequest.IID), p.MergeRequest.Title
		default:
			return nil
		}
		detail = a.Note
	default:
		return nil
	}
	groupLink := st.link(p.Mentioned.Name, p.Mentioned.URL)
	sourceLink := st.link(source, a.URL)
	title = st.text(firstLine(title))
	m := &message{
		summary: fmt.Sprintf("Group %s was mentioned in %s of %s: *%s*", groupLink, sourceLink, w.projectLink(), title),
		details: st.body(detail, p.Project.WebURL),
		activity: activity{Title: "Group " + groupLink + " was mentioned in " + sourceLink, Subtitle: "of " + w.projectLink(),
			Text: title, Image: p.userAvatar()},
	}
	m.attachments = []attachment{{Text: m.details, Color: defaultColor}}
	return m
}
