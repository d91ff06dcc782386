//go:build !unix

package rtspserver

import "syscall"

// inlineWrites is off where a socket cannot be written without waiting
// through its file descriptor (Windows: overlapped I/O); every reader is
// written by its own goroutine.
const inlineWrites = false

type rawWriter struct{}

func (*rawWriter) init(syscall.RawConn) {}

func (*rawWriter) write([]byte) (int, error) { return 0, nil }
