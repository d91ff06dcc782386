package guard

import (
	"errors"

	"golang.org/x/sys/windows"
)

// temporaryOS: Winsock's own codes for the errors temporary knows by
// their POSIX names.
func temporaryOS(err error) bool {
	for _, e := range []error{windows.WSAEMFILE, windows.WSAENOBUFS, windows.WSAECONNABORTED,
		windows.WSAECONNRESET, windows.WSAEINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
