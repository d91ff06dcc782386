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

var (
	// ErrBadSelector is returned for a selector or target that cannot be
	// used.
	ErrBadSelector = errors.New("bad agent selection")

	// ErrBadDesired is returned by ParseDesiredFile for a document the
	// fleet cannot write.
	ErrBadDesired = errors.New("bad desired-state document")

	// ErrRolloutOwned is returned by ResumeRollout while another fleet
	// tool runs the rollout (its heartbeat is recent).
	ErrRolloutOwned = errors.New("rollout is being run by another fleet tool")

	// ErrNoRollout is returned by LoadRollout when no rollout document is
	// retained under the id.
	ErrNoRollout = errors.New("no such rollout")
)
