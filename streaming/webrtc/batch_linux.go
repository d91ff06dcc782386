//go:build linux

package webrtc

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/internal/mmsg"
)

// batchConn is the ICE mux's UDP socket with its writes batched: while a
// session holds its peer's address (the access units it is writing), the
// datagrams pion writes there are queued, and sent with one sendmmsg(2)
// when the session lets go; runs of full packets (a frame's fragments)
// leave as segmented messages that the kernel cuts (mmsg.Batch). Without
// it, each packet of each reader is a sendto of its own, half of the
// agent's CPU at 50 readers.
//
// Writes to an address nobody holds (STUN, DTLS, a peer not yet playing)
// go out at once. pion sees an ordinary socket: it uses the AddrPort
// methods below, and its other writes reach the embedded *net.UDPConn.
type batchConn struct {
	*net.UDPConn
	raw    syscall.RawConn
	family int
	gso    bool // the socket can send segmented messages (mmsg.Batch)

	mu   sync.Mutex
	held map[netip.AddrPort]*heldDest

	dropped atomic.Uint64 // queued datagrams the socket refused
	sends   atomic.Uint64 // sendmmsg calls
	batched atomic.Uint64 // datagrams they sent
	cut     atomic.Uint64 // of those, datagrams sent in segmented messages
}

// heldDest is one peer's queue.
type heldDest struct {
	mu    sync.Mutex
	holds int
	dest  mmsg.Dest
	buf   []byte // the queued datagrams back to back
	ends  []int  // where each ends in buf
	batch mmsg.Batch
	one   [1]unix.Iovec
}

// Bounds of one queue: a batch goes out when either is reached.
const (
	batchMaxDatagrams = 64
	batchMaxBytes     = 64 << 10
)

func newBatchConn(c *net.UDPConn) (*batchConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &batchConn{UDPConn: c, raw: raw, family: mmsg.SocketFamily(c), gso: mmsg.GSO(raw), held: map[netip.AddrPort]*heldDest{}}, nil
}

// droppedCount is how many queued datagrams were lost in sending.
func (c *batchConn) droppedCount() uint64 { return c.dropped.Load() }

// heldCount is how many peers have a queue.
func (c *batchConn) heldCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// packetConn is what the ICE mux reads and writes.
func (c *batchConn) packetConn() net.PacketConn { return c }

func batchKey(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ReadFromAddrPort is pion's allocation-free read.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort is pion's allocation-free write: queued when ap is held.
func (c *batchConn) WriteToAddrPort(b []byte, ap netip.AddrPort) (int, error) {
	c.mu.Lock()
	h := c.held[batchKey(ap)]
	c.mu.Unlock()
	if h != nil {
		h.mu.Lock()
		if h.holds > 0 && len(b) > 0 && len(b) <= batchMaxBytes {
			h.buf = append(h.buf, b...)
			h.ends = append(h.ends, len(h.buf))
			if len(h.ends) >= batchMaxDatagrams || len(h.buf) >= batchMaxBytes {
				c.flush(h)
			}
			h.mu.Unlock()
			return len(b), nil
		}
		h.mu.Unlock()
	}
	return c.WriteToUDPAddrPort(b, ap)
}

// hold starts queueing the datagrams to ap; holds nest.
func (c *batchConn) hold(ap netip.AddrPort) {
	k := batchKey(ap)
	c.mu.Lock()
	h := c.held[k]
	if h == nil {
		h = &heldDest{dest: mmsg.MakeDest(c.family, ap)}
		if !h.dest.Valid() {
			c.mu.Unlock()
			return // never held: its writes go out one by one
		}
		c.held[k] = h
	}
	c.mu.Unlock()
	h.mu.Lock()
	h.holds++
	h.mu.Unlock()
}

// release ends one hold of ap; the last sends what was queued.
func (c *batchConn) release(ap netip.AddrPort) {
	c.mu.Lock()
	h := c.held[batchKey(ap)]
	c.mu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.holds > 0 {
		h.holds--
		if h.holds == 0 {
			c.flush(h)
		}
	}
	h.mu.Unlock()
}

// forget drops ap's queue (its session ended), sending what it held.
func (c *batchConn) forget(ap netip.AddrPort) {
	k := batchKey(ap)
	c.mu.Lock()
	h := c.held[k]
	delete(c.held, k)
	c.mu.Unlock()
	if h != nil {
		h.mu.Lock()
		h.holds = 0
		c.flush(h)
		h.mu.Unlock()
	}
}

// flush sends h's queue, waiting for a full socket as a plain write
// would (up to pion's write deadline, if it set one). A datagram the
// kernel refuses is lost, as on a network; the rest still go.
func (c *batchConn) flush(h *heldDest) {
	if len(h.ends) == 0 {
		return
	}
	c.send(h, 0)
	h.batch.Reset() // no pointers into buf outlive the send
	h.buf = h.buf[:0]
	h.ends = h.ends[:0]
}

// send sends h's queued datagrams from the first'th on: runs of full
// packets as segmented messages where the socket and the peer's route
// take them, else one message per datagram.
func (c *batchConn) send(h *heldDest, first int) {
	b := &h.batch
	b.Reset()
	start := 0
	if first > 0 {
		start = h.ends[first-1]
	}
	for _, end := range h.ends[first:] {
		h.one[0].Base = &h.buf[start]
		h.one[0].SetLen(end - start)
		b.Add(&h.dest, h.one[:], c.gso)
		start = end
	}
	hs := b.Hdrs()
	next := first // the first datagram not yet sent or lost
	for done := 0; done < len(hs); {
		k, err := mmsg.Send(c.raw, hs[done:], true)
		sent := b.Datagrams(done, done+k)
		c.sends.Add(1)
		c.batched.Add(uint64(sent))
		c.cut.Add(uint64(sent - b.Unsegmented(done, done+k)))
		next += sent
		done += k
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			c.dropped.Add(uint64(b.Datagrams(done, len(hs))))
			return
		}
		if b.RetryPlain(done, err) {
			// This peer's route does not take segmented messages: the
			// rest go as plain datagrams, now and from now on.
			c.send(h, next)
			return
		}
		lost := b.Datagrams(done, done+1) // the first of the rest was refused
		c.dropped.Add(uint64(lost))
		next += lost
		done++
	}
}
