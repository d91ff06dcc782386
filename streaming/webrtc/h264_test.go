package webrtc

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtp"
)

type countRef struct{ n int }

func (c *countRef) Retain()  { c.n++ }
func (c *countRef) Release() { c.n-- }

// collect copies what a videoWriter writes.
type collect struct {
	t    testing.TB
	pkts []*rtp.Packet
}

func (c *collect) write(p *rtp.Packet) error {
	if len(p.Payload) > maxPayload {
		c.t.Errorf("packet of %d bytes, over %d", len(p.Payload), maxPayload)
	}
	cp := *p
	cp.Payload = bytes.Clone(p.Payload)
	c.pkts = append(c.pkts, &cp)
	return nil
}

// decodeAUs decodes written packets with gortsplib's decoder, the way a
// player would, and fails on any gap in the sequence numbers.
func decodeAUs(t *testing.T, pkts []*rtp.Packet) [][][]byte {
	t.Helper()
	d := &rtph264.Decoder{PacketizationMode: 1}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence %d follows %d", p.SequenceNumber, pkts[i-1].SequenceNumber)
		}
		au, err := d.Decode(p)
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
			continue
		}
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		aus = append(aus, au)
	}
	return aus
}

func TestH264PassthroughRoundTrip(t *testing.T) {
	idr1, p1, idr2, p2 := randomNALU(5, 9000), randomNALU(1, 700), randomNALU(5, 3000), randomNALU(1, 70000)
	input := [][][]byte{
		{randomNALU(1, 500)},         // before any IDR: dropped
		{idr1},                       // IDR without parameter sets: they are inserted
		{p1},                         //
		{spsBaseline, testPPS, idr2}, // in-band parameter sets: not doubled
		{p2},                         // bigger than any packet: fragmented
	}
	want := [][][]byte{{spsBaseline, testPPS, idr1}, {p1}, {spsBaseline, testPPS, idr2}, {p2}}
	for _, camMax := range []int{1400, 1000, 65000} { // FU-A re-cut, small, one huge packet per NAL
		enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: camMax}
		if err := enc.Init(); err != nil {
			t.Fatal(err)
		}
		h := newH264Passthrough(spsBaseline, testPPS, true)
		out := &collect{t: t}
		for i, au := range input {
			pkts, err := enc.Encode(au)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkts {
				p.Timestamp = uint32(i * 3600)
				if err := h.process(p, nil, out.write); err != nil {
					t.Fatal(err)
				}
			}
		}
		// As few packets as the data needs: every FU-A fragment but the
		// last of its NAL unit is full.
		for i, p := range out.pkts {
			if p.Payload[0]&0x1f == nalFUA && p.Payload[1]&0x40 == 0 && len(p.Payload) != maxPayload {
				t.Fatalf("camera packets of %d: packet %d, a fragment that does not end its unit, has %d bytes", camMax, i, len(p.Payload))
			}
		}
		got := decodeAUs(t, out.pkts)
		if len(got) != len(want) {
			t.Fatalf("camera packets of %d: %d access units, want %d", camMax, len(got), len(want))
		}
		for i := range want {
			if !slices.EqualFunc(got[i], want[i], bytes.Equal) {
				t.Errorf("camera packets of %d: access unit %d differs (%d NAL units, want %d)", camMax, i, len(got[i]), len(want[i]))
			}
		}
	}
}

// TestH264PassthroughDropsDelimiters: a camera that sends an access unit
// delimiter in a packet of its own ahead of every frame (GStreamer's
// payloader does) costs no packet for it: the frames decode the same and
// the sequence numbers run on without a gap.
func TestH264PassthroughDropsDelimiters(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	frames := [][][]byte{{spsBaseline, testPPS, randomNALU(5, 5000)}, {randomNALU(1, 900)}, {randomNALU(1, 3000)}}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: maxPayload}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	h := newH264Passthrough(spsBaseline, testPPS, true)
	out := &collect{t: t}
	seq := uint16(100)
	in := 0
	for i, au := range frames {
		pkts, err := enc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append([]*rtp.Packet{{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: aud}}, pkts...)
		for _, p := range pkts {
			p.Timestamp, p.SequenceNumber = uint32(i*3600), seq
			seq++
			in++
			if err := h.process(p, nil, out.write); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, p := range out.pkts {
		if p.Payload[0]&0x1f == nalAUD {
			t.Fatalf("packet %d is an access unit delimiter", i)
		}
	}
	if len(out.pkts) != in-len(frames) {
		t.Fatalf("%d packets out of %d in (%d delimiters)", len(out.pkts), in, len(frames))
	}
	got := decodeAUs(t, out.pkts) // fails on a sequence gap
	if len(got) != len(frames) {
		t.Fatalf("%d access units, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !slices.EqualFunc(got[i], frames[i], bytes.Equal) {
			t.Errorf("access unit %d differs", i)
		}
	}
}

// TestH264PassthroughLargeParameterSets: parameter sets inserted ahead of
// an IDR never make a packet over maxPayload: one STAP-A when both fit,
// else each alone, cut in FU-A fragments when one alone is too big.
func TestH264PassthroughLargeParameterSets(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sps, pps    []byte
		wantPackets int // ahead of the IDR
	}{
		{"small: one STAP-A", spsBaseline, testPPS, 1},
		{"1987 bytes together: two packets", randomNALU(7, 1000), randomNALU(8, 982), 2},
		{"just over: two packets", randomNALU(7, 600), randomNALU(8, maxPayload-1-2-600-2+1), 2},
		{"just fits: one STAP-A", randomNALU(7, 600), randomNALU(8, maxPayload-1-2-600-2), 1},
		{"SPS alone too big: FU-A", randomNALU(7, 3000), testPPS, 4},
		{"both too big", randomNALU(7, 1300), randomNALU(8, 2500), 2 + 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newH264Passthrough(tc.sps, tc.pps, true)
			out := &collect{t: t}
			idr, p := randomNALU(5, 500), randomNALU(1, 300)
			for i, nal := range [][]byte{idr, p, idr} {
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(100 + i), Timestamp: uint32(i * 3600), Marker: true}, Payload: nal}
				if err := h.process(pkt, nil, out.write); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(out.pkts); got != 2*(tc.wantPackets+1)+1 {
				t.Errorf("%d packets, want %d", got, 2*(tc.wantPackets+1)+1)
			}
			for i, pk := range out.pkts[:tc.wantPackets] {
				if pk.Marker {
					t.Errorf("parameter set packet %d has the marker bit", i)
				}
			}
			want := [][][]byte{{tc.sps, tc.pps, idr}, {p}, {tc.sps, tc.pps, idr}}
			got := decodeAUs(t, out.pkts)
			if len(got) != len(want) {
				t.Fatalf("%d access units, want %d", len(got), len(want))
			}
			for i := range want {
				if !slices.EqualFunc(got[i], want[i], bytes.Equal) {
					t.Errorf("access unit %d differs (%d NAL units, want %d)", i, len(got[i]), len(want[i]))
				}
			}
		})
	}
}

func TestH264PassthroughKeepsLossGaps(t *testing.T) {
	h := newH264Passthrough(spsBaseline, testPPS, false)
	out := &collect{t: t}
	for i, seq := range []uint16{10, 11, 14, 15} {
		typ := byte(1)
		if i == 0 {
			typ = 5
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(i * 3600), Marker: true}, Payload: randomNALU(typ, 100)}
		if err := h.process(p, nil, out.write); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint16
	for _, p := range out.pkts {
		seqs = append(seqs, p.SequenceNumber-out.pkts[0].SequenceNumber)
	}
	// 0: inserted parameter sets, 1: IDR, 2, then two lost, 5.
	if want := []uint16{0, 1, 2, 5, 6}; !slices.Equal(seqs, want) {
		t.Fatalf("relative sequence numbers %v, want %v", seqs, want)
	}
}

func TestH264PassthroughRefusesBFrames(t *testing.T) {
	h := newH264Passthrough(spsBaseline, testPPS, true)
	out := &collect{t: t}
	var err error
	// Decode order I P B B P B B with presentation timestamps.
	for i, ts := range []uint32{0, 10800, 3600, 7200, 21600, 14400, 18000} {
		typ := byte(1)
		if i == 0 {
			typ = 5
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: ts, Marker: true}, Payload: randomNALU(typ, 50)}
		if err = h.process(p, nil, out.write); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBFrames) {
		t.Fatalf("err = %v, want ErrBFrames", err)
	}
}

func TestH265RepacketizerInsertsParameterSets(t *testing.T) {
	vps, sps, pps := []byte{0x40, 0x01, 0xaa}, []byte{0x42, 0x01, 0xbb}, []byte{0x44, 0x01, 0xcc}
	f := &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
	rp, err := newH265Repacketizer(f)
	if err != nil {
		t.Fatal(err)
	}
	enc := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: 1400}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	nal := func(typ byte, n int) []byte {
		b := randomNALU(0, n)
		b[0], b[1] = typ<<1, 1
		return b
	}
	ref := &countRef{}
	var types []byte
	write := func(p *rtp.Packet) error {
		if len(p.Payload) > maxPayload {
			t.Errorf("packet of %d bytes", len(p.Payload))
		}
		switch typ := (p.Payload[0] >> 1) & 0x3f; typ {
		case 48: // aggregation packet
			for b := p.Payload[2:]; len(b) > 2; {
				n := int(b[0])<<8 | int(b[1])
				types = append(types, (b[2]>>1)&0x3f)
				b = b[2+n:]
			}
		case 49: // fragmentation unit
			if p.Payload[2]&0x80 != 0 {
				types = append(types, p.Payload[2]&0x3f)
			}
		default:
			types = append(types, typ)
		}
		return nil
	}
	for i, au := range [][][]byte{{nal(1, 300)}, {nal(19, 5000)}, {nal(1, 300)}} {
		pkts, _ := enc.Encode(au)
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3600)
			if err := rp.process(p, ref, write); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []byte{32, 33, 34, 19, 1}; !slices.Equal(types, want) {
		t.Fatalf("NAL types %v, want %v", types, want)
	}
	if ref.n != 0 {
		t.Errorf("%d references held after complete access units", ref.n)
	}
}

// BenchmarkH264Passthrough is the per-packet cost of a WebRTC reader's
// video path: one GOP of 25 frames, a 20 kB IDR and 2 kB P-frames, from a
// camera packetising at 1400 bytes (so every fragment is re-cut).
// The big-params case has an SPS and a PPS that do not fit one packet
// together, and the SPS not even alone.
func BenchmarkH264Passthrough(b *testing.B) {
	for _, bc := range []struct {
		name     string
		camMax   int
		sps, pps []byte
	}{
		{"recut", 1400, spsBaseline, testPPS},
		{"as-is", 1100, spsBaseline, testPPS},
		{"big-params", 1100, randomNALU(7, 1500), randomNALU(8, 900)},
	} {
		camMax := bc.camMax
		b.Run(bc.name, func(b *testing.B) {
			enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: camMax}
			_ = enc.Init()
			var pkts []*rtp.Packet
			for i := 0; i < 25; i++ {
				au := [][]byte{randomNALU(1, 2000)}
				if i == 0 {
					au = [][]byte{randomNALU(5, 20000)}
				}
				ps, _ := enc.Encode(au)
				for _, p := range ps {
					p.Timestamp = uint32(i * 3600)
				}
				pkts = append(pkts, ps...)
			}
			h := newH264Passthrough(bc.sps, bc.pps, true)
			out := 0
			write := func(*rtp.Packet) error { out++; return nil }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pkts[i%len(pkts)]
				if i%len(pkts) == 0 {
					// Timestamps move on with every GOP, as a camera's do.
					for _, q := range pkts {
						q.Timestamp += 25 * 3600
					}
				}
				if err := h.process(p, nil, write); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out)/float64(b.N), "pkts-out/pkt-in")
		})
	}
}

// TestH264PassthroughLossInsideAFragmentedUnit: a fragment of the camera's
// lost in the middle of an IDR leaves a gap in the sequence numbers; a
// player's decoder drops that unit and no damaged NAL unit comes out,
// and the access units after it decode whole.
func TestH264PassthroughLossInsideAFragmentedUnit(t *testing.T) {
	idr, p1, p2, p3 := randomNALU(5, 5000), randomNALU(1, 3000), randomNALU(1, 500), randomNALU(1, 700)
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 1400}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	h := newH264Passthrough(spsBaseline, testPPS, true)
	out := &collect{t: t}
	for i, au := range [][][]byte{{idr}, {p1}, {p2}, {p3}} {
		pkts, err := enc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range pkts {
			p.Timestamp = uint32(i * 3600)
			if i == 0 && j == 1 {
				continue // lost
			}
			if err := h.process(p, nil, out.write); err != nil {
				t.Fatal(err)
			}
		}
	}
	gaps := 0
	for i := 1; i < len(out.pkts); i++ {
		if out.pkts[i].SequenceNumber != out.pkts[i-1].SequenceNumber+1 {
			gaps++
		}
	}
	if gaps == 0 {
		t.Fatal("no gap in the sequence numbers for a lost fragment")
	}
	d := &rtph264.Decoder{PacketizationMode: 1}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, p := range out.pkts {
		if au, err := d.Decode(p); err == nil {
			var cp [][]byte
			for _, nal := range au {
				cp = append(cp, bytes.Clone(nal)) // the decoder reuses its buffers
			}
			aus = append(aus, cp)
		}
	}
	var got [][]byte
	for _, au := range aus {
		for _, nal := range au {
			switch nal[0] & 0x1f {
			case nalIDR:
				if !bytes.Equal(nal, idr) {
					t.Fatalf("a damaged IDR of %d bytes was decoded", len(nal))
				}
			case 1:
				got = append(got, nal)
			}
		}
	}
	// The decoder may hold the last access unit back: p1 and p2 must be
	// there, whole and in order.
	if len(got) < 2 || !bytes.Equal(got[0], p1) || !bytes.Equal(got[1], p2) {
		t.Fatalf("%d slices decoded after the loss, want p1 and p2 first", len(got))
	}
}

// TestH264PassthroughDoesNotAllocate guards the claim of
// BenchmarkH264Passthrough: a GOP from a camera packetising at 1 400 bytes
// (parameter sets inserted, every fragment cut again) allocates nothing.
func TestH264PassthroughDoesNotAllocate(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 1400}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	var pkts []*rtp.Packet
	for i := range 25 {
		au := [][]byte{randomNALU(1, 2000)}
		if i == 0 {
			au = [][]byte{randomNALU(5, 20000)}
		}
		ps, err := enc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			p.Timestamp = uint32(i * 3600)
		}
		pkts = append(pkts, ps...)
	}
	h := newH264Passthrough(spsBaseline, testPPS, true)
	out := 0
	write := func(*rtp.Packet) error { out++; return nil }
	gop := func() {
		for _, q := range pkts {
			q.Timestamp += 25 * 3600
		}
		for _, p := range pkts {
			if err := h.process(p, nil, write); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := testing.AllocsPerRun(100, gop); n != 0 {
		t.Fatalf("%v allocations per GOP of %d packets", n, len(pkts))
	}
	if out == 0 {
		t.Fatal("nothing written")
	}
}
