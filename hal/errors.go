package hal

import "errors"

// ErrNotSupported is returned where the platform offers no such facility.
var ErrNotSupported = errors.New("not supported on this platform")
