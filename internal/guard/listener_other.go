//go:build !windows

package guard

// temporaryOS: the POSIX names in temporary are the errors themselves.
func temporaryOS(error) bool { return false }
