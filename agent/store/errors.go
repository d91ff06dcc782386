package store

import "errors"

var (
	// ErrLocked is returned by Open when another process holds the file
	// (usually a second camgate on the same data directory).
	ErrLocked = errors.New("another camgate is using it")

	// ErrTooLarge is returned by AppendOutbox for a record that alone
	// exceeds the outbox byte bound.
	ErrTooLarge = errors.New("record larger than the outbox bound")

	// ErrDamaged marks a state file, page or record that is not what bbolt
	// writes: Open moves such a file aside; at run time the store reports
	// it through Damaged.
	ErrDamaged = errors.New("damaged")

	// ErrOutboxFull is returned by AppendOutboxIfRoom when the message
	// would push older ones out.
	ErrOutboxFull = errors.New("outbox full")

	// ErrNotFound is returned for a missing path, stats entry or command.
	ErrNotFound = errors.New("not found")

	// ErrNewerSchema is returned by Open for a file written by a newer
	// camgate whose schema this one does not know.
	ErrNewerSchema = errors.New("schema is newer than this camgate")
)
