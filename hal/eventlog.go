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
