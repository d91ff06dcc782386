//go:build unix

package rtspserver_test

import "syscall"

// smallReceiveBuffer shrinks a socket's receive buffer before it connects.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
	})
}
