package rtspserver

import (
	"net"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// A connection that is not playing or recording has a read deadline: each
// request must arrive whole within Options.HandshakeTimeout of accept or
// of the previous response, or the connection is closed. Idle and
// half-sent connections thus cost a descriptor for a bounded time only.
//
// gortsplib v4.16.2 (checked in server_conn_reader.go and server_conn.go)
// sets read deadlines in two places only: readFuncStandard and
// readFuncTCP begin by clearing the deadline (SetReadDeadline with the
// zero time), and readFuncTCP sets ReadTimeout before each read while its
// session records. Nothing bounds a connection that never completes a
// request. handshake therefore keeps a deadline of its own while the
// connection is guarded: a cleared or later deadline asked for is replaced
// by it; OnResponse renews it after each answer, drops it once a PLAY or
// RECORD succeeded, and puts it back after a TEARDOWN.
// TestHandshakeDeadline fails if a gortsplib release changes this.
type handshake struct {
	mu       sync.Mutex
	timeout  time.Duration // 0: released, the connection plays or records
	deadline time.Time
}

// guard arms the deadline timeout from now on conn; mu is taken so that a
// concurrent setReadDeadline cannot apply an older deadline after it.
func (h *handshake) guard(conn net.Conn, timeout time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.timeout = timeout
	h.deadline = time.Now().Add(timeout)
	return conn.SetReadDeadline(h.deadline)
}

// renew moves a guarded deadline to timeout from now.
func (h *handshake) renew(conn net.Conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timeout == 0 {
		return nil
	}
	h.deadline = time.Now().Add(h.timeout)
	return conn.SetReadDeadline(h.deadline)
}

// release drops the deadline: the connection plays or records, and
// gortsplib's own timeouts apply.
func (h *handshake) release(conn net.Conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timeout == 0 {
		return nil
	}
	h.timeout = 0
	return conn.SetReadDeadline(time.Time{})
}

// setReadDeadline applies t, or the handshake deadline when guarded and t
// is later or none.
func (h *handshake) setReadDeadline(conn net.Conn, t time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timeout > 0 && (t.IsZero() || t.After(h.deadline)) {
		t = h.deadline
	}
	return conn.SetReadDeadline(t)
}

// SetReadDeadline implements net.Conn (see handshake).
func (b *batchConn) SetReadDeadline(t time.Time) error {
	return b.hs.setReadDeadline(b.Conn, t)
}

// answered updates the handshake deadline once the response to a request
// is ready (OnResponse, before it is written).
func (b *batchConn) answered(method base.Method, code base.StatusCode, timeout time.Duration) {
	switch {
	case (method == base.Play || method == base.Record) && code == base.StatusOK:
		_ = b.hs.release(b.Conn)
	case method == base.Teardown:
		_ = b.hs.guard(b.Conn, timeout)
	default:
		_ = b.hs.renew(b.Conn)
	}
}
