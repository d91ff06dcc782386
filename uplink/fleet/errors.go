package fleet

import "errors"

var (
	// ErrNoStatus is returned by Status when the broker holds no retained
	// status for the agent (it never connected, or the topic was cleared).
	ErrNoStatus = errors.New("no status retained for this agent")

	// ErrNoReply is returned by Command when no reply came before the
	// context ended.
	ErrNoReply = errors.New("no reply")
)
