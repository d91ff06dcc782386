package webrtc

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"
)

// maxPayload keeps every packet under the path MTU of any sane network
// after SRTP, UDP, IP and TURN overheads.
const maxPayload = 1200

// maxPending bounds the packets held for one access unit; a stream that
// never completes one (lost markers) is reset rather than hoarded.
const maxPending = 2048

// ref is a reference-counted packet buffer (streaming.Packet).
type ref interface {
	Retain()
	Release()
}

type auDecoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

type auEncoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

// repacketizer turns a camera's H.265 RTP into what browsers decode: whole
// access units from gortsplib's decoder, parameter sets put in front of
// every keyframe that lacks them, re-packetised by gortsplib's encoder into
// packets of at most maxPayload bytes. Access units before the first
// keyframe are dropped so the decoder starts on a clean picture. (H.264,
// the common case, has the allocation-free h264Passthrough instead.)
//
// The decoder keeps slices of the packets it was given until the access
// unit is complete, so those packets stay retained until then.
type repacketizer struct {
	newDecoder func() (auDecoder, error)
	dec        auDecoder
	enc        auEncoder
	// fix returns the access unit with parameter sets in front when it is
	// a keyframe that lacks them, and whether it is a keyframe.
	fix func(au [][]byte) ([][]byte, bool)

	started bool
	guard   reorderGuard
	pending []ref
}

// process takes one packet (kept alive through r); write gets the packets
// to send, valid during the call.
func (p *repacketizer) process(pkt *rtp.Packet, r ref, write func(*rtp.Packet) error) error {
	r.Retain()
	p.pending = append(p.pending, r)
	au, err := p.dec.Decode(pkt)
	switch {
	case errors.Is(err, rtph265.ErrMorePacketsNeeded):
		return p.bound()
	case err != nil:
		// A lost or damaged packet spoils one access unit, not the session.
		return p.bound()
	}
	// The decoder ends access units on the marker bit only: the whole
	// access unit came from the pending packets.
	werr := p.emit(au, pkt.Timestamp, write)
	p.releaseAll()
	return werr
}

func (p *repacketizer) emit(au [][]byte, ts uint32, write func(*rtp.Packet) error) error {
	if err := p.guard.check(ts); err != nil {
		return err
	}
	au, key := p.fix(au)
	if !p.started {
		if !key {
			return nil
		}
		p.started = true
	}
	pkts, err := p.enc.Encode(au)
	if err != nil {
		return fmt.Errorf("encode access unit: %w", err)
	}
	for _, o := range pkts {
		o.Timestamp = ts
		if err := write(o); err != nil {
			return err
		}
	}
	return nil
}

// bound resets the decoder when an access unit never completes.
func (p *repacketizer) bound() error {
	if len(p.pending) < maxPending {
		return nil
	}
	p.releaseAll()
	dec, err := p.newDecoder()
	if err != nil {
		return err
	}
	p.dec = dec
	return nil
}

func (p *repacketizer) releaseAll() {
	for _, x := range p.pending {
		x.Release()
	}
	clear(p.pending)
	p.pending = p.pending[:0]
}

// reorderGuard notices decode order differing from presentation order
// (B-frames): the timestamp of an access unit steps back a little.
// A large step back is a restarted source, not a B-frame.
type reorderGuard struct {
	last     uint32
	have     bool
	count    int
	disabled bool
}

const reorderMaxStep = 90000 // one second at 90 kHz

func (g *reorderGuard) check(ts uint32) error {
	if g.disabled {
		return nil
	}
	if g.have {
		if d := int32(ts - g.last); d < 0 && d > -reorderMaxStep {
			g.count++
			if g.count >= 2 {
				return ErrBFrames
			}
		}
	}
	g.last, g.have = ts, true
	return nil
}

func newH265Repacketizer(f *format.H265) (*repacketizer, error) {
	newDec := func() (auDecoder, error) {
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("h265 decoder: %w", err)
		}
		return d, nil
	}
	dec, err := newDec()
	if err != nil {
		return nil, err
	}
	enc := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: maxPayload}
	if err := enc.Init(); err != nil {
		return nil, fmt.Errorf("h265 encoder: %w", err)
	}
	vps, sps, pps := f.SafeParams()
	ps := &paramSets{sets: [][]byte{slices.Clone(vps), slices.Clone(sps), slices.Clone(pps)}}
	return &repacketizer{
		newDecoder: newDec,
		dec:        dec,
		enc:        enc,
		guard:      reorderGuard{disabled: true},
		fix: func(au [][]byte) ([][]byte, bool) {
			return ps.fix(au, func(n []byte) (int, bool) {
				if len(n) < 2 {
					return -1, false
				}
				switch t := (n[0] >> 1) & 0x3f; {
				case t >= 32 && t <= 34:
					return int(t - 32), false
				case t >= 16 && t <= 21:
					return -1, true
				}
				return -1, false
			})
		},
	}, nil
}

// paramSets keeps the latest parameter sets of a stream (from the format,
// then in-band) and puts them in front of keyframes that lack them.
type paramSets struct {
	sets [][]byte // H.264: SPS, PPS; H.265: VPS, SPS, PPS
	seen []bool
	out  [][]byte
}

// fix classifies with kind: the index of a parameter set, or -1, and
// whether the NAL unit is a keyframe slice.
func (ps *paramSets) fix(au [][]byte, kind func([]byte) (int, bool)) ([][]byte, bool) {
	if ps.seen == nil {
		ps.seen = make([]bool, len(ps.sets))
	}
	clear(ps.seen)
	key := false
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		i, k := kind(n)
		if i >= 0 {
			ps.seen[i] = true
			ps.sets[i] = append(ps.sets[i][:0], n...)
		}
		key = key || k
	}
	if !key || !slices.Contains(ps.seen, false) {
		return au, key
	}
	for _, s := range ps.sets {
		if len(s) == 0 {
			return au, key // nothing to insert yet
		}
	}
	ps.out = append(ps.out[:0], ps.sets...)
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if i, _ := kind(n); i < 0 {
			ps.out = append(ps.out, n)
		}
	}
	return ps.out, key
}

type rtpPacket = rtp.Packet
