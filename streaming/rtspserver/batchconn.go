package rtspserver

import (
	"encoding/binary"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// Reader connections gather a video access unit's interleaved RTP frames
// and send them in one write: gortsplib writes every frame with a syscall
// of its own, which was half of the agent's CPU with 50 readers. A frame
// is held only while it is RTP with the marker bit clear, i.e. not the
// last packet of its access unit; a player cannot decode the access unit
// before that last packet anyway, so holding the others costs no latency.
// Anything else (the marker packet, RTCP, RTSP responses, TLS records)
// goes out at once together with what is held, in order.
const (
	// batchMax bounds what a connection holds; a larger access unit goes
	// out in pieces of about this size.
	batchMax = 32 << 10
	// batchHold bounds how long frames wait for their marker packet (a
	// camera that never sets the marker bit).
	batchHold = 10 * time.Millisecond
)

// batchBufs recycles the hold buffers: a connection has one only while it
// holds frames, so 50 readers of one camera share a few.
var batchBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, batchMax)
	return &b
}}

// batchListener makes every connection a batchConn with its handshake
// deadline armed.
type batchListener struct {
	net.Listener
	handshake time.Duration
}

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	b := newBatchConn(c)
	_ = b.hs.guard(c, l.handshake)
	return b, nil
}

// batchConn holds RTP frames until the end of their access unit.
// gortsplib writes one whole frame per Write call, from the session's
// writer and from the connection's request loop: the mutex keeps them in
// order.
type batchConn struct {
	net.Conn
	raw syscall.RawConn // for writes that must not wait (inlineWrites); nil: none
	rw  rawWriter       // on raw, under mu

	mu       sync.Mutex
	held     *[]byte   // nil while nothing is held
	deadline time.Time // last write deadline asked for
	applied  time.Time // write deadline set on the socket
	timer    *time.Timer
	armed    bool
	err      error // a failed flush of held frames, returned by the next Write
	// afterWrite runs once after the next write of anything but held
	// frames (the response being sent), under mu.
	afterWrite func()

	// The request being answered on this connection, for OnResponse.
	reqMu      sync.Mutex
	reqMethod  base.Method
	reqSession *session
	reqSS      *gortsplib.ServerSession
	reqMedias  int // media set up in reqSession before this SETUP

	hs handshake // the read deadline until the connection plays or records
}

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok && inlineWrites {
		b.raw, _ = sc.SyscallConn()
		if b.raw != nil {
			b.rw.init(b.raw)
		}
	}
	b.timer = time.AfterFunc(time.Hour, b.timedFlush)
	b.timer.Stop()
	return b
}

// holdable reports whether p is one whole interleaved RTP frame that is not
// the last of its access unit.
func holdable(p []byte) bool {
	if len(p) < 4+12 || p[0] != '$' || int(binary.BigEndian.Uint16(p[2:4])) != len(p)-4 {
		return false
	}
	if p[4]>>6 != 2 {
		return false // not RTP version 2
	}
	if pt := p[5] & 0x7f; pt >= 72 && pt <= 95 {
		return false // RTCP (packet types 200-223)
	}
	return p[5]&0x80 == 0 // marker bit clear
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if holdable(p) {
		if b.held == nil {
			b.held = batchBufs.Get().(*[]byte)
		}
		if len(*b.held)+len(p) <= batchMax {
			*b.held = append(*b.held, p...)
			if !b.armed {
				b.armed = true
				b.timer.Reset(batchHold)
			}
			return len(p), nil
		}
	}
	if b.held == nil {
		if err := b.applyDeadline(); err != nil {
			return 0, err
		}
		n, err := b.Conn.Write(p)
		if err == nil {
			b.wrote()
		}
		return n, err
	}
	*b.held = append(*b.held, p...)
	if err := b.flush(); err != nil {
		return 0, err
	}
	b.wrote()
	return len(p), nil
}

// wrote runs afterWrite; b.mu is held.
func (b *batchConn) wrote() {
	if f := b.afterWrite; f != nil {
		b.afterWrite = nil
		f()
	}
}

// onNextWrite makes f run after the next write that is not held.
func (b *batchConn) onNextWrite(f func()) {
	b.mu.Lock()
	b.afterWrite = f
	b.mu.Unlock()
}

// writeBatch writes p, whole interleaved frames, at once after anything
// held, with a write deadline at least timeout from now.
func (b *batchConn) writeBatch(p []byte, timeout time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if err := b.writeHeld(timeout); err != nil {
		return err
	}
	if err := b.renewDeadline(timeout); err != nil {
		b.err = err
		return err
	}
	if _, err := b.Conn.Write(p); err != nil {
		b.err = err
		return err
	}
	return nil
}

// writeHeld sends what is held (what tryWrite kept) with a deadline of at
// least timeout; b.mu is held. flush would apply the deadline gortsplib
// last asked for, which may have passed long ago.
func (b *batchConn) writeHeld(timeout time.Duration) error {
	if b.held == nil {
		return nil
	}
	err := b.sendHeld(b.renewDeadline(timeout))
	if err != nil {
		b.err = err
	}
	return err
}

// renewDeadline keeps a write deadline between timeout and 1.5 × timeout
// ahead; b.mu is held. Setting a deadline moves a runtime timer, and a
// reader gets a batch 25 or more times a second: it is renewed only once
// less than timeout is left. The next gortsplib write sets its own again.
func (b *batchConn) renewDeadline(timeout time.Duration) error {
	now := time.Now()
	if !b.applied.Before(now.Add(timeout)) && !b.applied.After(now.Add(timeout*3/2)) {
		return nil
	}
	b.applied = now.Add(timeout * 3 / 2)
	return b.Conn.SetWriteDeadline(b.applied)
}

// tryResult is what tryWrite did with the bytes it was given.
type tryResult int

const (
	tryNotWritten tryResult = iota // nothing written: queue them
	trySent                        // all written
	tryKept                        // partly written, the rest kept for flushKept
)

// tryWrite writes p, whole interleaved frames, without waiting for the
// socket or for another writer of the connection. What the socket does
// not take at once is kept (as held frames, which any later write sends
// first, so nothing can come between) and flushKept must send it.
// Nothing is written while frames are already held, while gortsplib is
// writing, or where the platform has no such writes.
func (b *batchConn) tryWrite(p []byte, timeout time.Duration) (tryResult, error) {
	if b.raw == nil || !b.mu.TryLock() {
		return tryNotWritten, nil
	}
	defer b.mu.Unlock()
	if b.err != nil {
		return tryNotWritten, b.err
	}
	if b.held != nil {
		return tryNotWritten, nil
	}
	if err := b.renewDeadline(timeout); err != nil {
		b.err = err
		return tryNotWritten, err
	}
	n, err := b.rw.write(p)
	if err != nil {
		b.err = err
		return tryNotWritten, err
	}
	if n == len(p) {
		return trySent, nil
	}
	b.held = batchBufs.Get().(*[]byte)
	*b.held = append(*b.held, p[n:]...)
	return tryKept, nil
}

// flushKept sends what tryWrite kept, waiting for the socket.
func (b *batchConn) flushKept(timeout time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	return b.writeHeld(timeout)
}

// flush writes what is held with the deadline gortsplib asked for; b.mu
// is held.
func (b *batchConn) flush() error { return b.sendHeld(b.applyDeadline()) }

// sendHeld writes what is held unless setting its deadline failed
// (deadlineErr), and recycles the buffer; b.mu is held.
func (b *batchConn) sendHeld(deadlineErr error) error {
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	held := b.held
	b.held = nil
	err := deadlineErr
	if err == nil {
		_, err = b.Conn.Write(*held)
	}
	putBatchBuf(held)
	return err
}

// putBatchBuf recycles a hold buffer; one that an IDR's remainder grew far
// past batchMax is left to the collector.
func putBatchBuf(bp *[]byte) {
	if cap(*bp) > 2*batchMax {
		return
	}
	*bp = (*bp)[:0]
	batchBufs.Put(bp)
}

func (b *batchConn) timedFlush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	if b.held == nil || b.err != nil {
		return
	}
	b.err = b.flush()
}

// applyDeadline sets the last asked-for write deadline on the socket,
// once per write instead of once per frame.
func (b *batchConn) applyDeadline() error {
	if b.deadline.Equal(b.applied) {
		return nil
	}
	b.applied = b.deadline
	return b.Conn.SetWriteDeadline(b.deadline)
}

func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.mu.Unlock()
	return nil
}

func (b *batchConn) SetDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.applied = t
	b.mu.Unlock()
	return b.Conn.SetDeadline(t)
}

// Close drops held frames: nobody would read them. The socket is closed
// first so that a flush blocked on a slow reader returns.
func (b *batchConn) Close() error {
	err := b.Conn.Close()
	b.mu.Lock()
	b.timer.Stop()
	b.armed = false
	if b.held != nil {
		putBatchBuf(b.held)
		b.held = nil
	}
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.mu.Unlock()
	return err
}
