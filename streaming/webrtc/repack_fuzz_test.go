package webrtc

import (
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"
)

// A packet stream as the repacketiser fuzzers read it: records of a flags
// byte, a 16-bit payload length and the payload. Flags: bit 0 the marker,
// bits 1-2 the timestamp step (0 same, 1 +3600, 2 -3600, 3 +180000),
// bits 3-4 packets lost before this one.
type streamPacket struct {
	marker bool
	step   byte
	lost   byte
	data   []byte
}

func parseStream(b []byte) []streamPacket {
	var out []streamPacket
	for len(b) >= 3 {
		f, n := b[0], int(b[1])<<8|int(b[2])
		b = b[3:]
		n = min(n, len(b))
		out = append(out, streamPacket{marker: f&1 != 0, step: (f >> 1) & 3, lost: (f >> 3) & 3, data: b[:n]})
		b = b[n:]
	}
	return out
}

// packets turns records into RTP packets (built once: the passes over
// them must not allocate).
func packets(recs []streamPacket) []*rtp.Packet {
	var out []*rtp.Packet
	var seq uint16
	var ts uint32
	for _, r := range recs {
		seq += uint16(r.lost)
		switch r.step {
		case 1:
			ts += 3600
		case 2:
			ts -= 3600
		case 3:
			ts += 180000
		}
		out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 7, Marker: r.marker}, Payload: r.data})
		seq++
	}
	return out
}

// appendStream encodes access units (one timestamp step each) with a
// camera packetiser of payloads up to camMax bytes.
func appendStream(b []byte, camMax int, h265 bool, aus ...[][]byte) []byte {
	for _, au := range aus {
		var pkts []*rtp.Packet
		var err error
		if h265 {
			enc := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: camMax}
			if err = enc.Init(); err == nil {
				pkts, err = enc.Encode(au)
			}
		} else {
			enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: camMax}
			if err = enc.Init(); err == nil {
				pkts, err = enc.Encode(au)
			}
		}
		if err != nil {
			panic(err)
		}
		for i, p := range pkts {
			var f byte
			if p.Marker {
				f |= 1
			}
			if i == 0 {
				f |= 1 << 1
			}
			b = append(b, f, byte(len(p.Payload)>>8), byte(len(p.Payload)))
			b = append(b, p.Payload...)
		}
	}
	return b
}

// fixedNALU is an H.264 NAL unit of typ and n bytes with a fixed body
// free of zero bytes (seeds stay the same from run to run).
func fixedNALU(typ byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7%255) + 1
	}
	b[0] = 0x60 | typ
	return b
}

func nal265(typ byte, n int) []byte {
	b := fixedNALU(0, n)
	b[0], b[1] = typ<<1, 1
	return b
}

// repackCases feed TestRepacketiserCases and seed FuzzH264Passthrough and
// FuzzH265Repacketizer.
var repackCases = []struct {
	name     string
	h265     bool
	sps, pps []byte // format's (H.265: SPS and PPS; the VPS is fixed)
	stream   []byte
}{
	{"h264 plain", false, spsBaseline, testPPS, appendStream(nil, 1400, false,
		[][]byte{fixedNALU(1, 300)}, [][]byte{fixedNALU(5, 2500)}, [][]byte{fixedNALU(1, 900)})},
	{"h264 in-band sets, huge packets", false, nil, nil, appendStream(nil, 5000, false,
		[][]byte{spsBaseline, testPPS, fixedNALU(5, 4000)}, [][]byte{fixedNALU(1, 3000)})},
	{"h264 stap-a", false, spsBaseline, testPPS, appendStream(nil, 1400, false,
		[][]byte{spsBaseline, testPPS, fixedNALU(5, 200)}, [][]byte{fixedNALU(1, 100), fixedNALU(1, 100)})},
	// Issue 15: together the parameter sets made a STAP-A larger than
	// maxPayload.
	{"h264 big parameter sets", false, append([]byte{0x67, 0x42, 0xc0, 0x28}, fixedNALU(1, 1000)[1:]...), append([]byte{0x68}, fixedNALU(1, 600)[1:]...),
		appendStream(nil, 1400, false, [][]byte{fixedNALU(5, 2000)}, [][]byte{fixedNALU(1, 100)})},
	{"h264 b-frames", false, spsHighBFrames, testPPS, appendStream(nil, 1400, false,
		[][]byte{fixedNALU(5, 500)}, [][]byte{fixedNALU(1, 50)}, [][]byte{fixedNALU(1, 50)})},
	{"h264 garbage", false, spsBaseline, testPPS, []byte{0, 0, 2, 0x7c, 0x85, 1, 0, 1, 0x78, 3, 0, 5, 0x18, 0, 9, 0x65, 1}},
	{"h265 plain", true, []byte{0x42, 0x01, 0xbb}, []byte{0x44, 0x01, 0xcc}, appendStream(nil, 1400, true,
		[][]byte{nal265(1, 300)}, [][]byte{nal265(19, 2500)}, [][]byte{nal265(1, 300)})},
	{"h265 aggregated", true, nil, nil, appendStream(nil, 1400, true,
		[][]byte{nal265(32, 20), nal265(33, 40), nal265(34, 8), nal265(19, 100)}, [][]byte{nal265(1, 50)})},
	{"h265 garbage", true, nil, nil, []byte{1, 0, 3, 0x60, 1, 0x80, 1, 0, 4, 0x62, 1, 0x93, 0xff}},
}

// checkWriter checks what a videoWriter writes, without allocating: every
// payload within maxPayload and not empty, sequence numbers moving on.
type checkWriter struct {
	t       *testing.T
	n       int
	lastSeq uint16
	bad     string
}

func (c *checkWriter) write(p *rtp.Packet) error {
	switch {
	case c.bad != "":
	case len(p.Payload) == 0:
		c.bad = "an empty payload"
	case len(p.Payload) > maxPayload:
		c.bad = "a payload over maxPayload"
	case c.n > 0 && (p.SequenceNumber == c.lastSeq || p.SequenceNumber-c.lastSeq >= 0x8000):
		c.bad = "a sequence number that does not move on"
	}
	c.n++
	c.lastSeq = p.SequenceNumber
	return nil
}

func (c *checkWriter) check(what string) {
	c.t.Helper()
	if c.bad != "" {
		c.t.Fatalf("%s: packet %d: %s", what, c.n, c.bad)
	}
}

// runH264 passes the stream through a passthrough twice: the second pass
// (every buffer grown by the first) must not allocate.
func runH264(t *testing.T, sps, pps, stream []byte) {
	t.Helper()
	pkts := packets(parseStream(stream))
	h := newH264Passthrough(sps, pps, true)
	w := &checkWriter{t: t}
	write := w.write
	pass := func() {
		for _, p := range pkts {
			_ = h.process(p, nil, write) // ErrBFrames ends a session; the rest must cope
		}
	}
	allocs := testing.AllocsPerRun(1, pass)
	w.check("h264")
	if allocs != 0 {
		t.Fatalf("second pass over %d packets: %v allocations, want 0", len(pkts), allocs)
	}
}

type countedRef struct{ n *int }

func (c countedRef) Retain()  { *c.n++ }
func (c countedRef) Release() { *c.n-- }

// runH265 passes the stream through an H.265 repacketizer; every packet it
// retained is released by the end.
func runH265(t *testing.T, sps, pps, stream []byte) {
	t.Helper()
	f := &format.H265{PayloadTyp: 96, VPS: []byte{0x40, 0x01, 0x0c}, SPS: sps, PPS: pps}
	rp, err := newH265Repacketizer(f)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	w := &checkWriter{t: t}
	for _, p := range packets(parseStream(stream)) {
		_ = rp.process(p, countedRef{&held}, w.write)
		if len(rp.pending) > maxPending {
			t.Fatalf("%d packets pending, bound %d", len(rp.pending), maxPending)
		}
	}
	w.check("h265")
	if held != len(rp.pending) {
		t.Fatalf("%d references held, %d packets pending", held, len(rp.pending))
	}
	rp.releaseAll()
	if held != 0 {
		t.Fatalf("%d references held after releaseAll", held)
	}
}

func TestRepacketiserCases(t *testing.T) {
	for _, c := range repackCases {
		t.Run(c.name, func(t *testing.T) {
			if c.h265 {
				runH265(t, c.sps, c.pps, c.stream)
			} else {
				runH264(t, c.sps, c.pps, c.stream)
			}
		})
	}
}

// FuzzH264Passthrough: no panic, every payload within maxPayload, and no
// allocation once the buffers have grown.
func FuzzH264Passthrough(f *testing.F) {
	for _, c := range repackCases {
		if !c.h265 {
			f.Add(c.sps, c.pps, c.stream)
		}
	}
	f.Fuzz(runH264)
}

// FuzzH265Repacketizer: no panic, every payload within maxPayload, the
// pending packets bounded and every reference released.
func FuzzH265Repacketizer(f *testing.F) {
	for _, c := range repackCases {
		if c.h265 {
			f.Add(c.sps, c.pps, c.stream)
		}
	}
	f.Fuzz(runH265)
}
