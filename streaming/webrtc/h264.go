package webrtc

import (
	"github.com/pion/rtp"
)

// h264Passthrough forwards a camera's H.264 RTP packets as they are where it
// can, so the steady state costs no allocation and no access-unit delay:
//
//   - a STAP-A with the latest SPS and PPS (from the format, then in-band)
//     goes ahead of every IDR whose access unit does not carry them;
//   - packets larger than maxPayload (cameras over RTSP/TCP send up to 64 KiB)
//     are cut into FU-A fragments, so packetization-mode 0 input leaves as
//     mode 1;
//   - nothing is sent before the first IDR;
//   - sequence numbers are renumbered (inserted and split packets), keeping
//     the gaps of lost input packets so the receiver still sees the loss.
//
// Every output packet is built in buffers reused for the next one: write
// must be done with it when it returns (pion's WriteRTP is).
type h264Passthrough struct {
	sps, pps []byte
	started  bool

	auTS         uint32
	auKnown      bool
	auSPS, auPPS bool // parameter sets already sent in this access unit

	lastIn  uint16
	haveIn  bool
	seqOut  uint16
	guard   reorderGuard
	out     rtp.Packet
	scratch []byte
}

func newH264Passthrough(sps, pps []byte, watchReorder bool) *h264Passthrough {
	return &h264Passthrough{
		sps:     append([]byte(nil), sps...),
		pps:     append([]byte(nil), pps...),
		guard:   reorderGuard{disabled: !watchReorder},
		scratch: make([]byte, 0, maxPayload),
	}
}

// NAL unit and payload types (RFC 6184).
const (
	nalIDR  = 5
	nalSPS  = 7
	nalPPS  = 8
	nalSTAP = 24
	nalFUA  = 28
)

func (h *h264Passthrough) process(pkt *rtp.Packet, _ ref, write func(*rtp.Packet) error) error {
	p := pkt.Payload
	if len(p) == 0 {
		return nil
	}
	if h.haveIn {
		// Keep the gap of lost packets; a step back is reordering, ignored.
		if gap := pkt.SequenceNumber - h.lastIn - 1; gap != 0 && gap < 0x8000 {
			h.seqOut += gap
		}
	}
	h.lastIn, h.haveIn = pkt.SequenceNumber, true
	if !h.auKnown || pkt.Timestamp != h.auTS {
		if err := h.guard.check(pkt.Timestamp); err != nil {
			return err
		}
		h.auTS, h.auKnown = pkt.Timestamp, true
		h.auSPS, h.auPPS = false, false
	}

	idr, hasSPS, hasPPS := false, false, false
	switch typ := p[0] & 0x1f; typ {
	case nalIDR:
		idr = true
	case nalSPS:
		hasSPS = true
		h.sps = append(h.sps[:0], p...)
	case nalPPS:
		hasPPS = true
		h.pps = append(h.pps[:0], p...)
	case nalSTAP:
		for b := p[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || n+2 > len(b) {
				return nil // malformed: drop
			}
			nal := b[2 : 2+n]
			switch nal[0] & 0x1f {
			case nalIDR:
				idr = true
			case nalSPS:
				hasSPS = true
				h.sps = append(h.sps[:0], nal...)
			case nalPPS:
				hasPPS = true
				h.pps = append(h.pps[:0], nal...)
			}
			b = b[2+n:]
		}
	case nalFUA:
		if len(p) < 3 {
			return nil
		}
		idr = p[1]&0x80 != 0 && p[1]&0x1f == nalIDR
	case 25, 26, 27, 29: // STAP-B, MTAP16/24, FU-B: interleaved mode, refused at negotiation
		return nil
	}

	if !h.started {
		if !idr {
			return nil
		}
		h.started = true
	}
	if idr && !((h.auSPS || hasSPS) && (h.auPPS || hasPPS)) && len(h.sps) > 0 && len(h.pps) > 0 {
		if err := h.paramSets(pkt, write); err != nil {
			return err
		}
		hasSPS, hasPPS = true, true
	}
	h.auSPS = h.auSPS || hasSPS
	h.auPPS = h.auPPS || hasPPS

	if len(p) <= maxPayload {
		return h.emit(pkt, p, pkt.Marker, write)
	}
	switch p[0] & 0x1f {
	case nalFUA:
		return h.fragment(pkt, p[0], p[1], p[2:], pkt.Marker, write)
	case nalSTAP:
		for b := p[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			nal := b[2 : 2+n]
			b = b[2+n:]
			last := len(b) <= 2
			if err := h.single(pkt, nal, last && pkt.Marker, write); err != nil {
				return err
			}
		}
		return nil
	default:
		return h.single(pkt, p, pkt.Marker, write)
	}
}

// paramSets sends the latest SPS and PPS: one STAP-A where they fit in
// maxPayload together, else each on its own (fragmented if need be).
func (h *h264Passthrough) paramSets(pkt *rtp.Packet, write func(*rtp.Packet) error) error {
	if 1+2+len(h.sps)+2+len(h.pps) > maxPayload {
		if err := h.single(pkt, h.sps, false, write); err != nil {
			return err
		}
		return h.single(pkt, h.pps, false, write)
	}
	b := append(h.scratch[:0], nalSTAP)
	b = append(b, byte(len(h.sps)>>8), byte(len(h.sps)))
	b = append(b, h.sps...)
	b = append(b, byte(len(h.pps)>>8), byte(len(h.pps)))
	b = append(b, h.pps...)
	h.scratch = b
	return h.emit(pkt, b, false, write)
}

// single sends one NAL unit, as it is or in FU-A fragments.
func (h *h264Passthrough) single(pkt *rtp.Packet, nal []byte, marker bool, write func(*rtp.Packet) error) error {
	if len(nal) <= maxPayload {
		return h.emit(pkt, nal, marker, write)
	}
	// A whole NAL unit is a fragment that both starts and ends.
	return h.fragment(pkt, nal[0]&0xe0|nalFUA, 0xc0|nal[0]&0x1f, nal[1:], marker, write)
}

// fragment sends data (the NAL unit body, or a part of it) as FU-A packets
// of at most maxPayload bytes; fuh's start bit goes on the first and its
// end bit on the last.
func (h *h264Passthrough) fragment(pkt *rtp.Packet, ind, fuh byte, data []byte, marker bool, write func(*rtp.Packet) error) error {
	const room = maxPayload - 2
	start, end := fuh&0x80, fuh&0x40
	typ := fuh & 0x1f
	for first := true; len(data) > 0; first = false {
		n := min(len(data), room)
		last := n == len(data)
		hdr := typ
		if first {
			hdr |= start
		}
		if last {
			hdr |= end
		}
		b := append(h.scratch[:0], ind, hdr)
		b = append(b, data[:n]...)
		h.scratch = b
		if err := h.emit(pkt, b, last && marker, write); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func (h *h264Passthrough) emit(pkt *rtp.Packet, payload []byte, marker bool, write func(*rtp.Packet) error) error {
	h.out.Header = rtp.Header{
		Version:        2,
		Marker:         marker,
		PayloadType:    pkt.PayloadType,
		SequenceNumber: h.seqOut,
		Timestamp:      pkt.Timestamp,
		SSRC:           pkt.SSRC,
	}
	h.out.Payload = payload
	h.seqOut++
	return write(&h.out)
}

// releaseAll implements videoWriter: nothing is held between packets.
func (h *h264Passthrough) releaseAll() {}
