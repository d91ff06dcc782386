//go:build !windows

package hal

import "fmt"

// OpenEventLog returns ErrNotSupported: on Linux the journal already keeps
// the agent's stderr, start and stop included.
func OpenEventLog(source string) (EventLog, error) {
	return nil, fmt.Errorf("open event log %s: %w", source, ErrNotSupported)
}
