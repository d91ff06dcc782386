package streaming

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Packet is one RTP packet of a Stream, shared by every reader.
// It is immutable once handed to readers. A reader that keeps it past
// WritePacket calls Retain, and Release when done.
type Packet struct {
	// Media and Format are the stream's own (Stream.Desc()).
	Media  *description.Media
	Format format.Format
	// MediaIndex is the index of Media in Stream.Desc().Medias.
	MediaIndex int
	// RTP must not be modified by readers.
	RTP *rtp.Packet
	// NTP is the wall-clock time of the packet as far as the source knows.
	NTP time.Time
	// Keyed is true for tracks whose keyframes are known (H.264, H.265): on
	// those a reader that lost packets, or joins without a cached group,
	// waits for a packet with Key set.
	Keyed bool
	// Key marks a packet that begins or belongs to the first access unit of
	// a keyframe group (H.264/H.265 IDR with its parameter sets).
	Key bool

	refs atomic.Int32
	rtp  rtp.Packet
	buf  []byte
	csrc []uint32
	wire []byte // marshalled form, valid while wired
	// wired is set by Marshalled; readers see it through the queue or the
	// stream lock that handed them the packet.
	wired bool
}

var packetPool = sync.Pool{New: func() any {
	p := &Packet{buf: make([]byte, 0, 1500)}
	p.RTP = &p.rtp
	return p
}}

// newPacket copies src into a pooled Packet holding one reference.
func newPacket(src *rtp.Packet) *Packet {
	p := packetPool.Get().(*Packet)
	p.refs.Store(1)
	p.rtp.Header = src.Header
	p.rtp.PaddingSize = src.PaddingSize

	p.buf = p.buf[:0]
	if n := len(src.CSRC); n > 0 {
		p.csrc = append(p.csrc[:0], src.CSRC...)
		p.rtp.CSRC = p.csrc
	}
	if len(src.Extensions) > 0 {
		// Header extensions are rare on cameras; their type hides its
		// fields, so this one case copies with an allocation.
		p.rtp.Extensions = src.Header.Clone().Extensions
	}
	start := len(p.buf)
	p.buf = append(p.buf, src.Payload...)
	p.rtp.Payload = p.buf[start:len(p.buf):len(p.buf)]
	return p
}

// Size is the packet's size on the wire without transport framing.
func (p *Packet) Size() int { return p.rtp.MarshalSize() }

// Marshalled is the packet as it goes on the wire (RTP header and payload).
// It is computed on first use into the packet's own buffer; the first call
// is made on the stream's writer goroutine (under the stream lock), so that
// readers on other goroutines only read it. The bytes must not be modified.
func (p *Packet) Marshalled() []byte {
	if !p.wired {
		n := p.rtp.MarshalSize()
		if cap(p.wire) < n {
			p.wire = make([]byte, n, max(n, 1500))
		}
		n, err := p.rtp.MarshalTo(p.wire[:n])
		if err != nil {
			n = 0
		}
		p.wire = p.wire[:n]
		p.wired = true
	}
	return p.wire
}

// Retain adds a reference.
func (p *Packet) Retain() { p.refs.Add(1) }

// Release drops a reference; the last one returns the packet to the pool.
func (p *Packet) Release() {
	switch n := p.refs.Add(-1); {
	case n == 0:
		p.Media, p.Format, p.Key, p.Keyed = nil, nil, false, false
		p.rtp.Extensions, p.rtp.CSRC = nil, nil
		p.wire, p.wired = p.wire[:0], false
		packetPool.Put(p)
	case n < 0:
		panic("streaming: Packet released more often than retained")
	}
}
