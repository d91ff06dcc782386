//go:build linux

package rtspserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/internal/mmsg"
	"github.com/camgate/camgate/streaming"
)

// UDP readers are sent with sendmmsg(2) (internal/mmsg): one system call
// per access unit and reader instead of one per packet, written inline
// from the stream's goroutine while the socket takes them (a reader's
// goroutine wakes only when it does not). Each datagram is two pieces, the
// first 12 bytes of the shared wire form with the reader's SSRC stamped
// in, and the rest of it as it is: nothing is copied per reader. Runs of
// datagrams of one size go as segmented messages where the kernel has
// UDP segmentation offload.

// udpInline: UDP readers are written from the stream's goroutine.
const udpInline = true

// udpDest is a reader's address as sendmmsg takes it.
type udpDest = mmsg.Dest

func makeUDPDest(family int, ap netip.AddrPort) udpDest { return mmsg.MakeDest(family, ap) }

// socketFamily is the address family of c's socket.
func socketFamily(c *net.UDPConn) int { return mmsg.SocketFamily(c) }

// udpGSO reports whether raw's socket can send segmented messages.
func udpGSO(raw syscall.RawConn) bool { return raw != nil && mmsg.GSO(raw) }

// mmsgBatch is the scratch of one sendmmsg call.
type mmsgBatch struct {
	b    mmsg.Batch
	iov  [2]unix.Iovec
	head [outBatch][12]byte
}

var mmsgBatches = sync.Pool{New: func() any { return new(mmsgBatch) }}

// sendUDP sends ps to the reader, up to outBatch datagrams per system
// call. With wait it waits for the socket (up to the write timeout);
// without, it stops at the first datagram the socket does not take. It
// returns how many of ps it is done with (sent, or lost like on a
// network: too large, no address, refused by the kernel); an error means
// the socket is closed. Sent packets are counted for the sender reports.
func (t *directOut) sendUDP(ps []*streaming.Packet, wait bool) (int, error) {
	b := mmsgBatches.Get().(*mmsgBatch)
	defer func() {
		b.b.Reset() // no pointers kept into the packets
		mmsgBatches.Put(b)
	}()
	// The packets of an access unit to one reader are runs of one size
	// (a camera cuts its fragments full): with segmentation each run is
	// one message the kernel cuts (mmsg.Batch).
	done := 0
	for done < len(ps) {
		// Build messages from up to outBatch datagrams of ps[done:];
		// packets that cannot be sent are done with at once.
		b.b.Reset()
		m := 0
		next := done
		for next < len(ps) && m < outBatch {
			p := ps[next]
			w := p.Marshalled()
			d := &t.dests[p.MediaIndex]
			if len(w) < 12 || len(w) > maxDatagram || !d.Valid() {
				if m == 0 {
					t.st.CountDropped(1)
					done++
					next++
					continue
				}
				break // sent after the messages before it
			}
			h := &b.head[m]
			copy(h[:], w[:12])
			binary.BigEndian.PutUint32(h[8:], t.wire.ssrc[p.MediaIndex])
			b.iov[0].Base = &h[0]
			b.iov[0].SetLen(12)
			k := 1
			if len(w) > 12 {
				b.iov[1].Base = &w[12]
				b.iov[1].SetLen(len(w) - 12)
				k = 2
			}
			b.b.Add(d, b.iov[:k], t.udp.gso)
			m++
			next++
		}
		if m == 0 {
			continue
		}
		// The datagrams are ps[done:next].
		n, err := t.udp.sendmmsg(b.b.Hdrs(), wait, t.timeout)
		sent := b.b.Datagrams(0, n)
		t.count(ps[done : done+sent])
		done += sent
		switch {
		case err == nil:
			// All sent, or some: the next call reports why the rest
			// was not.
		case errors.Is(err, net.ErrClosed):
			return done, err
		case errors.Is(err, syscall.EAGAIN): // without wait only
			return done, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Waited the whole write timeout: the rest is lost.
			t.st.CountDropped(uint64(len(ps) - done))
			return len(ps), nil
		case b.b.RetryPlain(n, err):
			// This reader's route does not take segmented messages:
			// the same datagrams again, plain, now and from now on.
		default:
			// The kernel refused this message (it reports the first
			// failing one when none went out): lost, go on.
			lost := b.b.Datagrams(n, n+1)
			t.st.CountDropped(uint64(lost))
			done += lost
		}
	}
	return done, nil
}

// sendmmsg sends hs in one system call, waiting for the socket when wait
// or not at all. The socket's write deadline (shared, see udpSocket) is
// renewed first either way: RawConn.Write fails at once past it, even
// when it would not wait.
func (u *udpSocket) sendmmsg(hs []mmsg.Hdr, wait bool, timeout time.Duration) (int, error) {
	if err := u.renew(timeout, false); err != nil {
		return 0, err
	}
	n, err := mmsg.Send(u.raw, hs, wait)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// gortsplib set a nearer deadline for a write of its own.
		if err := u.renew(timeout, true); err != nil {
			return 0, err
		}
		n, err = mmsg.Send(u.raw, hs, wait)
	}
	return n, err
}
