//go:build windows

package rtspserver_test

import "syscall"

// smallReceiveBuffer shrinks a socket's receive buffer before it connects.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
	})
}
