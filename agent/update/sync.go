package update

import (
	"errors"
	"syscall"
)

// isUnsupported reports errors of fsync on a directory handle that some
// platforms and file systems give instead of syncing.
func isUnsupported(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno) && (errno == syscall.EINVAL || errno == syscall.ENOTSUP)
}
