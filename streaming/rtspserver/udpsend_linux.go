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
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/streaming"
)

// UDP readers are sent with sendmmsg(2): one system call per access unit
// and reader instead of one per packet, written inline from the stream's
// goroutine while the socket takes them (a reader's goroutine wakes only
// when it does not). Each datagram is two pieces, the first 12 bytes of
// the shared wire form with the reader's SSRC stamped in, and the rest of
// it as it is: nothing is copied per reader.
//
// Written here rather than with x/net/ipv4's WriteBatch: that one always
// waits for a full socket (the inline write must not), takes a net.Addr
// per message, and would add its socket package to the binary for one
// system call.

// udpInline: UDP readers are written from the stream's goroutine.
const udpInline = true

// mmsghdr is struct mmsghdr of sendmmsg(2): a msghdr and the bytes sent,
// padded to the pointer size.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// udpDest is a reader's address as the kernel takes it, for the family
// of the server's socket (an IPv4 reader of a dual-stack socket in its
// IPv4-mapped IPv6 form).
type udpDest struct {
	sa  unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	len uint32                // 0: none
}

func makeUDPDest(family int, ap netip.AddrPort) udpDest {
	var d udpDest
	if !ap.IsValid() {
		return d
	}
	ip := ap.Addr()
	port := ap.Port()
	if family == unix.AF_INET {
		if !ip.Unmap().Is4() {
			return d
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&d.sa))
		sa.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], port)
		sa.Addr = ip.Unmap().As4()
		d.len = unix.SizeofSockaddrInet4
		return d
	}
	d.sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&d.sa.Port))[:], port)
	d.sa.Addr = ip.As16()
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			d.sa.Scope_id = uint32(ifi.Index)
		}
	}
	d.len = unix.SizeofSockaddrInet6
	return d
}

// socketFamily is the address family of c's socket.
func socketFamily(c *net.UDPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return unix.AF_INET6
	}
	family := unix.AF_INET6
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
			family = v
		}
	})
	return family
}

// mmsgBatch is the scratch of one sendmmsg call.
type mmsgBatch struct {
	hs   [outBatch]mmsghdr
	iov  [outBatch][2]unix.Iovec
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
	defer mmsgBatches.Put(b)
	done := 0
	for done < len(ps) {
		// Build up to outBatch messages from ps[done:]; packets that
		// cannot be sent are done with at once.
		m := 0
		next := done
		for next < len(ps) && m < outBatch {
			p := ps[next]
			w := p.Marshalled()
			d := &t.dests[p.MediaIndex]
			if len(w) < 12 || len(w) > maxDatagram || d.len == 0 {
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
			iov := &b.iov[m]
			iov[0].Base = &h[0]
			iov[0].SetLen(12)
			hdr := &b.hs[m].hdr
			*hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&d.sa)), Namelen: d.len, Iov: &iov[0], Iovlen: 1}
			if len(w) > 12 {
				iov[1].Base = &w[12]
				iov[1].SetLen(len(w) - 12)
				hdr.SetIovlen(2)
			}
			m++
			next++
		}
		if m == 0 {
			continue
		}
		// The messages are ps[done:next].
		n, err := t.udp.sendmmsg(b.hs[:m], wait, t.timeout)
		t.count(ps[done : done+n])
		done += n
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
		default:
			// The kernel refused this datagram (it reports the first
			// failing one when none went out): lost, go on.
			t.st.CountDropped(1)
			done++
		}
	}
	return done, nil
}

// sendmmsg sends hs in one system call, waiting for the socket when wait
// or not at all. The socket's write deadline (shared, see udpSocket) is
// renewed first either way: RawConn.Write fails at once past it, even
// when it would not wait.
func (u *udpSocket) sendmmsg(hs []mmsghdr, wait bool, timeout time.Duration) (int, error) {
	if err := u.renew(timeout, false); err != nil {
		return 0, err
	}
	n, err := u.sendmmsgOnce(hs, wait)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// gortsplib set a nearer deadline for a write of its own.
		if err := u.renew(timeout, true); err != nil {
			return 0, err
		}
		n, err = u.sendmmsgOnce(hs, wait)
	}
	return n, err
}

func (u *udpSocket) sendmmsgOnce(hs []mmsghdr, wait bool) (int, error) {
	c := mmsgCalls.Get().(*mmsgCall)
	defer mmsgCalls.Put(c)
	c.hs, c.wait, c.n, c.errno = hs, wait, 0, 0
	err := u.raw.Write(c.fn)
	n, errno := c.n, c.errno
	c.hs = nil
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// mmsgCall is one sendmmsg through syscall.RawConn.Write, whose callback
// (fn) is made once per mmsgCall: a closure made per call would be an
// allocation per access unit and reader.
type mmsgCall struct {
	hs    []mmsghdr
	wait  bool
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var mmsgCalls = sync.Pool{New: func() any {
	c := new(mmsgCall)
	c.fn = c.call
	return c
}}

// call runs sendmmsg; it asks RawConn.Write to wait for the socket only
// when c.wait and the socket is full.
func (c *mmsgCall) call(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.hs[0])), uintptr(len(c.hs)), 0, 0, 0)
		if e != unix.EINTR {
			c.n, c.errno = int(r), e
			break
		}
	}
	return !c.wait || c.errno != unix.EAGAIN
}
