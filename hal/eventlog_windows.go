//go:build windows

package hal

import (
	"fmt"

	"golang.org/x/sys/windows/svc/eventlog"
)

// Event ids by severity: the source is registered with EventCreate.exe as
// its message file (InstallService), which accepts ids 1 to 1000 and shows
// the message text as is.
const (
	eventInfo    = 1
	eventWarning = 2
	eventError   = 3
)

// OpenEventLog opens the Windows Application event log for source, which
// InstallService registers. Writing to an unregistered source still works
// but Event Viewer then shows a "description cannot be found" preamble.
func OpenEventLog(source string) (EventLog, error) {
	l, err := eventlog.Open(source)
	if err != nil {
		return nil, fmt.Errorf("open event log %s: %w", source, err)
	}
	return winEventLog{l}, nil
}

type winEventLog struct{ l *eventlog.Log }

func (w winEventLog) Info(msg string) error    { return w.l.Info(eventInfo, msg) }
func (w winEventLog) Warning(msg string) error { return w.l.Warning(eventWarning, msg) }
func (w winEventLog) Error(msg string) error   { return w.l.Error(eventError, msg) }
func (w winEventLog) Close() error             { return w.l.Close() }
