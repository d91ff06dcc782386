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
	wire []byte // the wire form: buf, or nil when the header cannot be marshalled
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
	// The wire form is written once here, into the packet's one buffer;
	// the payload readers see is a window of it, so a packet costs a
	// single copy and Marshalled is free.
	n := src.MarshalSize()
	if cap(p.buf) < n {
		p.buf = make([]byte, n, max(n, 1500))
	}
	n, err := src.MarshalTo(p.buf[:n])
	if err != nil {
		// Not representable on the wire: keep the payload, no wire form.
		p.buf = append(p.buf[:0], src.Payload...)
		p.rtp.Payload = p.buf[:len(p.buf):len(p.buf)]
		p.wire = nil
		return p
	}
	p.buf = p.buf[:n]
	h := src.Header.MarshalSize()
	p.rtp.Payload = p.buf[h : h+len(src.Payload) : h+len(src.Payload)]
	p.wire = p.buf
	return p
}

// Size is the packet's size on the wire without transport framing.
func (p *Packet) Size() int {
	if p.wire != nil {
		return len(p.wire)
	}
	return p.rtp.MarshalSize()
}

// Marshalled is the packet as it goes on the wire (RTP header with the
// source's SSRC, and payload). The bytes must not be modified.
func (p *Packet) Marshalled() []byte { return p.wire }

// Retain adds a reference.
func (p *Packet) Retain() { p.refs.Add(1) }

// Release drops a reference; the last one returns the packet to the pool.
func (p *Packet) Release() {
	switch n := p.refs.Add(-1); {
	case n == 0:
		p.Media, p.Format, p.Key, p.Keyed = nil, nil, false, false
		p.rtp.Extensions, p.rtp.CSRC = nil, nil
		p.wire = nil
		packetPool.Put(p)
	case n < 0:
		panic("streaming: Packet released more often than retained")
	}
}
