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

// rawWriter writes through a syscall.RawConn without waiting. Its
// callback is made once: a closure made per write would be an allocation
// per access unit and reader. One writer at a time (batchConn.mu).
type rawWriter struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (w *rawWriter) init(rc syscall.RawConn) {
	w.rc = rc
	w.fn = w.call
}

func (w *rawWriter) call(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.p)
	return true // never wait for the socket here
}

// write writes p once without waiting; a full socket buffer writes 0.
func (w *rawWriter) write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p = nil
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
