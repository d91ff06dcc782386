package hal

// EventLog is the platform's system log for the few messages an operator
// looks for when a box misbehaves unattended: service start, stop and
// fatal errors. The agent's detailed log stays in its log file; this is
// not a zerolog sink.
type EventLog interface {
	Info(msg string) error
	Warning(msg string) error
	Error(msg string) error
	Close() error
}

// nopEventLog stands in when the event log cannot be opened: missing the
// event log must not stop the service.
type nopEventLog struct{}

func (nopEventLog) Info(string) error    { return nil }
func (nopEventLog) Warning(string) error { return nil }
func (nopEventLog) Error(string) error   { return nil }
func (nopEventLog) Close() error         { return nil }
