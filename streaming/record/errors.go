package record

import "errors"

var (
	// ErrNoRecordings means the path has no segment in the asked range.
	ErrNoRecordings = errors.New("no recordings found")
	// ErrUnsupportedTracks means no track of the stream can be recorded.
	ErrUnsupportedTracks = errors.New("no track of the stream can be recorded")
	// ErrDiskFull means a part was dropped: writing it would have left less
	// than recordMinFreeBytes free, and no older segment was left to delete.
	ErrDiskFull = errors.New("not enough free space: part dropped")
	// ErrNotRecorded means the path name resolves to no path entry.
	ErrNotRecorded = errors.New("path is not configured")
	// ErrClosed means the recorder has stopped.
	ErrClosed = errors.New("recorder closed")
)

// ConfigError is a setting of PathConfig the recorder cannot use. Key names
// it as the config file spells it, e.g. "recordPath".
type ConfigError struct {
	Key string
	Err error
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }
