//go:build linux

package mmsg

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported: this OS has sendmmsg.
const Supported = true

// Hdr is struct mmsghdr of sendmmsg(2): a msghdr and the bytes sent, laid
// out for this architecture by x/sys (a hand-written trailing pad of zero
// bytes on 32-bit ARM made Go pad the struct to 36 bytes, not 32, and the
// kernel read every message after the first at the wrong place).
type Hdr struct {
	m unix.Mmsghdr
}

// Set points h at one datagram to d made of iov. d and iov must stay
// where they are until the send returns.
func (h *Hdr) Set(d *Dest, iov []unix.Iovec) {
	h.m = unix.Mmsghdr{Hdr: unix.Msghdr{Name: (*byte)(unsafe.Pointer(&d.sa)), Namelen: d.len, Iov: &iov[0]}}
	h.m.Hdr.SetIovlen(len(iov))
}

// Dest is a destination as the kernel takes it, for the family of the
// sending socket (an IPv4 peer of a dual-stack socket in its IPv4-mapped
// IPv6 form).
type Dest struct {
	sa  unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	len uint32                // 0: none
	// noGSO: a segmented message to it failed (its route's device, or
	// MTU), so it gets plain datagrams (Batch).
	noGSO bool
}

// PlainOnly reports whether a segmented message to d failed, so that it
// gets plain datagrams only.
func (d *Dest) PlainOnly() bool { return d.noGSO }

// Valid reports whether d can be sent to.
func (d *Dest) Valid() bool { return d.len != 0 }

// MakeDest returns ap for a socket of family (unix.AF_INET or AF_INET6);
// the zero Dest when ap is invalid or an IPv6 address on an IPv4 socket.
func MakeDest(family int, ap netip.AddrPort) Dest {
	var d Dest
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

// SocketFamily is the address family of c's socket.
func SocketFamily(c *net.UDPConn) int {
	family := unix.AF_INET6
	rc, err := c.SyscallConn()
	if err != nil {
		return family
	}
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
			family = v
		}
	})
	return family
}

// Send sends hs with one sendmmsg through raw. With wait it waits for a
// full socket (up to the socket's write deadline); without, a full socket
// is syscall.EAGAIN. It returns how many of hs went out; with an error,
// none did: the kernel reports a failing datagram only when it is the
// first, so the caller decides whether to drop it and go on.
func Send(raw syscall.RawConn, hs []Hdr, wait bool) (int, error) {
	if len(hs) == 0 {
		return 0, nil
	}
	c := calls.Get().(*call)
	defer calls.Put(c)
	c.hs, c.wait, c.n, c.errno = hs, wait, 0, 0
	err := raw.Write(c.fn)
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

// call is one sendmmsg through syscall.RawConn.Write, whose callback (fn)
// is made once per call value: a closure made per send would be an
// allocation per access unit and reader.
type call struct {
	hs    []Hdr
	wait  bool
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var calls = sync.Pool{New: func() any {
	c := new(call)
	c.fn = c.run
	return c
}}

// run calls sendmmsg; it asks RawConn.Write to wait for the socket only
// when c.wait and the socket is full.
func (c *call) run(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.hs[0])), uintptr(len(c.hs)), 0, 0, 0)
		if e != unix.EINTR {
			c.n, c.errno = int(r), e
			break
		}
	}
	return !c.wait || c.errno != unix.EAGAIN
}
