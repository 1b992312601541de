package mcpserver

// Backlog reports what the outbox of the session owning tasks of owner
// holds: log lines queued, and dropped and not yet reported.
func Backlog(s *Server, owner string) (logs, dropped int) {
	sess := s.sessionOf(owner)
	if sess == nil {
		return 0, 0
	}
	return sess.out.backlog()
}

// Outbox bounds, for tests.
const MaxQueuedLogs = maxQueuedLogs
