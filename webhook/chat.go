package webhook

// Chat integrations (Hook.Chat set) are indexed apart from webhooks: they
// are matched by inheritance (the fan-out's MatchChats), not by Match.

// addChat indexes a chat integration by its scope.
func (s *HookSet) addChat(key string, h *Hook) {
	if s.chats == nil {
		s.chats = map[string][]*Hook{}
	}
	s.chats[key] = append(s.chats[key], h)
}

// ChatsInProject returns the chat integrations of a project.
func (s *HookSet) ChatsInProject(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.chats[scopeKey(path, "")]
}

// ChatsInGroup returns the chat integrations of a group, not those of its
// subgroups.
func (s *HookSet) ChatsInGroup(path string) []*Hook {
	if s == nil {
		return nil
	}
	return s.chats[scopeKey("", path)]
}
