//go:build linux

package mmsg

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bounds of one segmented message: the kernel takes at most 64 segments
// (UDP_MAX_SEGMENTS before Linux 6.9) and a UDP payload under 64 KiB.
const (
	MaxSegments = 64
	MaxGSOBytes = 63 << 10
)

var gsoOff atomic.Bool

// DisableGSO turns segmented messages off for sockets set up from now on
// (agent.udpGSO: false, for a network driver that mishandles them).
func DisableGSO() { gsoOff.Store(true) }

// GSO reports whether raw's socket can send segmented messages
// (UDP_SEGMENT, Linux 4.18): a kernel that does not know the option
// refuses to report it.
func GSO(raw syscall.RawConn) bool {
	if gsoOff.Load() {
		return false
	}
	ok := false
	_ = raw.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// IsGSOError reports whether err, from a segmented message, means this
// destination cannot take segmented messages: the route's device does
// not compute checksums (EIO), the segments do not fit its MTU or the
// socket sends without checksums (EINVAL), or the message is too large.
// Sent as plain datagrams instead, they may still go.
func IsGSOError(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.EOPNOTSUPP)
}

// segment is the control message of a segmented message: a cmsghdr and
// the segment size, laid out as CMSG_DATA expects on every architecture
// (TestSegmentLayout).
type segment struct {
	h    unix.Cmsghdr
	data [8]byte
}

func (s *segment) set(size int) {
	s.h.Level = unix.IPPROTO_UDP
	s.h.Type = unix.UDP_SEGMENT
	s.h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(s.data[:2], uint16(size))
}

// Batch builds the messages of sendmmsg calls from datagrams. With
// segmenting on, consecutive datagrams to one destination that have one
// size, the last of them possibly shorter, become one message that the
// kernel cuts into those datagrams (UDP generic segmentation offload):
// one trip through the network stack for the run instead of one per
// datagram, which halves the kernel's cost per datagram on loopback. The
// packets of a video frame are such a run: every fragment but a NAL
// unit's last is full.
//
// The memory the datagrams' iovecs point at must stay put until the
// messages are sent. A Batch is reused: Reset, Add, Hdrs, then Send the
// headers and count with Datagrams.
type Batch struct {
	iov  []unix.Iovec
	msgs []batchMsg
	hs   []Hdr
	segs []segment
}

type batchMsg struct {
	dest     *Dest
	iov, nio int // b.iov[iov : iov+nio]
	n        int // datagrams
	size     int // of the first: the segment size
	bytes    int
	gso      bool
	closed   bool // a shorter datagram ended the run
}

// Reset empties b, keeping its memory.
func (b *Batch) Reset() {
	// No pointers are kept into the caller's buffers.
	clear(b.iov)
	clear(b.hs)
	b.iov = b.iov[:0]
	b.msgs = b.msgs[:0]
	b.hs = b.hs[:0]
}

// Add appends one datagram to d, made of the pieces iov points at (the
// iovecs are copied, not what they point at). With gso, it joins the
// message before it when that one goes to the same d (the same pointer),
// also with gso, and the run allows it; not when a segmented message to
// d failed before (RetryPlain).
func (b *Batch) Add(d *Dest, iov []unix.Iovec, gso bool) {
	gso = gso && !d.noGSO
	size := 0
	for i := range iov {
		size += int(iov[i].Len)
	}
	if gso && len(b.msgs) > 0 {
		m := &b.msgs[len(b.msgs)-1]
		if m.gso && m.dest == d && !m.closed && m.n < MaxSegments && m.bytes+size <= MaxGSOBytes && size > 0 && size <= m.size {
			b.iov = append(b.iov, iov...)
			m.nio += len(iov)
			m.n++
			m.bytes += size
			m.closed = size < m.size
			return
		}
	}
	b.msgs = append(b.msgs, batchMsg{dest: d, iov: len(b.iov), nio: len(iov), n: 1, size: size, bytes: size, gso: gso})
	b.iov = append(b.iov, iov...)
}

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.msgs) }

// Hdrs returns the messages for Send, valid until the next Reset or Add.
func (b *Batch) Hdrs() []Hdr {
	n := len(b.msgs)
	if cap(b.hs) < n {
		b.hs = make([]Hdr, n, max(n, 2*cap(b.hs)))
		b.segs = make([]segment, n, cap(b.hs))
	}
	b.hs, b.segs = b.hs[:n], b.segs[:n]
	for i := range b.msgs {
		m := &b.msgs[i]
		b.hs[i].Set(m.dest, b.iov[m.iov:m.iov+m.nio])
		if m.n > 1 {
			b.segs[i].set(m.size)
			b.hs[i].m.Hdr.Control = (*byte)(unsafe.Pointer(&b.segs[i]))
			b.hs[i].m.Hdr.SetControllen(unix.CmsgSpace(2))
		}
	}
	return b.hs
}

// Datagrams is the number of datagrams in messages [i, j).
func (b *Batch) Datagrams(i, j int) int {
	n := 0
	for _, m := range b.msgs[i:j] {
		n += m.n
	}
	return n
}

// Unsegmented is the number of messages in [i, j) that are plain
// datagrams.
func (b *Batch) Unsegmented(i, j int) int {
	n := 0
	for _, m := range b.msgs[i:j] {
		if m.n == 1 {
			n++
		}
	}
	return n
}

// Segmented reports whether message i is a segmented one.
func (b *Batch) Segmented(i int) bool { return b.msgs[i].n > 1 }

// RetryPlain reports whether message i, refused with err, is to be sent
// again as plain datagrams: it was segmented and err is one IsGSOError
// knows. Its destination then gets plain datagrams from now on (Add).
func (b *Batch) RetryPlain(i int, err error) bool {
	m := &b.msgs[i]
	if m.n == 1 || !IsGSOError(err) {
		return false
	}
	m.dest.noGSO = true
	return true
}
