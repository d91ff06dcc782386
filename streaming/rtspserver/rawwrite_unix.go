//go:build unix

package rtspserver

import (
	"errors"
	"syscall"
)

// inlineWrites: a TCP reader that keeps up is written from the stream's
// goroutine with a write(2) that does not wait, instead of waking a
// goroutine per reader and access unit.
const inlineWrites = true

// rawWrite writes p once without waiting; a full socket buffer writes 0.
func rawWrite(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait for the socket here
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return max(n, 0), nil
}
