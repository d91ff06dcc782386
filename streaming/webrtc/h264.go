package webrtc

import (
	"github.com/pion/rtp"
)

// h264Passthrough forwards a camera's H.264 RTP packets as they are where it
// can, so the steady state costs no allocation and no access-unit delay:
//
//   - the latest SPS and PPS (from the format, then in-band) go ahead of
//     every IDR whose access unit does not carry them, in one STAP-A when
//     it fits in maxPayload;
//   - packets larger than maxPayload (cameras over RTSP/TCP send up to 64 KiB)
//     are cut into FU-A fragments, so packetization-mode 0 input leaves as
//     mode 1;
//   - the camera's own FU-A fragments are cut again so that every one but
//     the last of a NAL unit is full: a camera packetising at 1 400 bytes
//     would otherwise cost two packets (1 200 + 200) for each of its own,
//     where ceil(NAL/1 198) are enough. The bytes of a fragment that do not
//     fill a packet wait for the next fragment of the same NAL unit, which
//     follows within the same burst;
//   - access unit delimiters and filler data in packets of their own are
//     left out;
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
	fu      fuRun
}

// fuRun is the NAL unit whose FU-A fragments are being cut again.
type fuRun struct {
	active   bool
	sentAny  bool // its first fragment (start bit) has gone out
	ind, typ byte // FU indicator (F, NRI) and the NAL unit type
	// buf holds two bytes for the FU indicator and header, then the bytes
	// of the NAL unit body not sent yet: at most maxPayload-2 of them.
	buf []byte
}

func newH264Passthrough(sps, pps []byte, watchReorder bool) *h264Passthrough {
	return &h264Passthrough{
		sps:     append([]byte(nil), sps...),
		pps:     append([]byte(nil), pps...),
		guard:   reorderGuard{disabled: !watchReorder},
		scratch: make([]byte, 0, maxPayload),
		fu:      fuRun{buf: make([]byte, 2, maxPayload)},
	}
}

// NAL unit and payload types (RFC 6184).
const (
	nalIDR  = 5
	nalSPS  = 7
	nalPPS  = 8
	nalAUD  = 9
	nalFill = 12
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
			h.fu.active = false // its held bytes are useless without the lost ones
		}
	}
	h.lastIn, h.haveIn = pkt.SequenceNumber, true
	if !h.auKnown || pkt.Timestamp != h.auTS {
		if err := h.guard.check(pkt.Timestamp); err != nil {
			return err
		}
		h.auTS, h.auKnown = pkt.Timestamp, true
		h.auSPS, h.auPPS = false, false
		h.abandonFU()
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
	case nalAUD, nalFill:
		// A packet of its own for an access unit delimiter (GStreamer
		// and many cameras send one ahead of every frame) or filler:
		// browsers need neither, and each would be a packet per frame
		// and reader. Renumbering leaves no gap.
		if !pkt.Marker {
			return nil
		}
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

	if p[0]&0x1f == nalFUA {
		return h.refragment(pkt, p, write)
	}
	h.abandonFU()
	if len(p) <= maxPayload {
		return h.emit(pkt, p, pkt.Marker, write)
	}
	switch p[0] & 0x1f {
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

// paramSets sends the SPS and the PPS ahead of an IDR: in one STAP-A when
// it fits in maxPayload, else each on its own (in FU-A fragments when one
// alone is too big; cameras with many slice groups or long VUI have SPS
// and PPS of a kilobyte and more).
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

// refragment takes one FU-A fragment of the camera's: its bytes join
// those held for the NAL unit, every full packet goes out, and the end
// fragment sends the rest with the end bit. A fragment whose start was
// not seen (joined mid-unit, or after a loss) goes out as it is.
func (h *h264Passthrough) refragment(pkt *rtp.Packet, p []byte, write func(*rtp.Packet) error) error {
	ind, fuh, body := p[0], p[1], p[2:]
	if fuh&0x80 != 0 {
		h.abandonFU() // the previous unit's end was lost
		h.fu = fuRun{active: true, ind: ind, typ: fuh & 0x1f, buf: h.fu.buf[:2]}
	} else if !h.fu.active {
		if len(p) <= maxPayload {
			return h.emit(pkt, p, pkt.Marker, write)
		}
		return h.fragment(pkt, ind, fuh, body, pkt.Marker, write)
	}
	const room = maxPayload - 2
	for len(body) > 0 {
		if len(h.fu.buf)-2 == room { // full, and more follows: send it
			if err := h.sendFU(pkt, false, false, write); err != nil {
				return err
			}
		}
		n := min(room-(len(h.fu.buf)-2), len(body))
		h.fu.buf = append(h.fu.buf, body[:n]...)
		body = body[n:]
	}
	if fuh&0x40 == 0 {
		return nil
	}
	h.fu.active = false
	return h.sendFU(pkt, true, pkt.Marker, write)
}

// sendFU sends the held bytes of the unit: as an FU-A fragment, or as a
// single NAL unit packet when the whole unit fits in one (RFC 6184 5.8:
// no FU may have both the start and the end bit).
func (h *h264Passthrough) sendFU(pkt *rtp.Packet, last, marker bool, write func(*rtp.Packet) error) error {
	defer func() { h.fu.buf = h.fu.buf[:2] }()
	if last && !h.fu.sentAny {
		h.fu.buf[1] = h.fu.ind&0xe0 | h.fu.typ
		return h.emit(pkt, h.fu.buf[1:], marker, write)
	}
	hdr := h.fu.typ
	if !h.fu.sentAny {
		hdr |= 0x80
	}
	if last {
		hdr |= 0x40
	}
	h.fu.buf[0], h.fu.buf[1] = h.fu.ind, hdr
	h.fu.sentAny = true
	return h.emit(pkt, h.fu.buf, marker, write)
}

// abandonFU drops a unit whose end never came, leaving a gap in the
// sequence numbers so that the receiver knows something is missing.
func (h *h264Passthrough) abandonFU() {
	if h.fu.active {
		h.fu.active = false
		h.seqOut++
	}
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
