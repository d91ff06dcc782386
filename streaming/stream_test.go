package streaming

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

func h264Desc() *description.Session {
	return &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 8, MULaw: false, SampleRate: 8000, ChannelCount: 1}}},
	}}
}

// nal builds an RTP packet carrying one NAL unit of type t.
func nal(t byte, ts uint32, seq uint16) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: ts, SequenceNumber: seq}, Payload: []byte{t, 1, 2, 3}}
}

type recorder struct {
	got    []byte // NAL types received
	closed error
	refuse bool
}

func (r *recorder) WritePacket(p *Packet) bool {
	if r.refuse {
		return false
	}
	if p.MediaIndex == 0 {
		r.got = append(r.got, p.RTP.Payload[0]&0x1f)
	}
	return true
}

func (r *recorder) Close(err error) { r.closed = err }

func TestKeyDetection(t *testing.T) {
	cases := []struct {
		name string
		c    videoCodec
		p    []byte
		want bool
	}{
		{"h264 idr", codecH264, []byte{0x65, 0}, true},
		{"h264 sps", codecH264, []byte{0x67, 0}, true},
		{"h264 p slice", codecH264, []byte{0x41, 0}, false},
		{"h264 stap-a with sps", codecH264, []byte{0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0}, true},
		{"h264 stap-a with sei", codecH264, []byte{0x78, 0, 2, 0x06, 0}, false},
		{"h264 stap-a truncated", codecH264, []byte{0x78, 0, 9, 0x67}, false},
		{"h264 fu-a idr start", codecH264, []byte{0x7c, 0x85, 0}, true},
		{"h264 fu-a idr middle", codecH264, []byte{0x7c, 0x05, 0}, false},
		{"h264 empty", codecH264, nil, false},
		{"h265 idr_w_radl", codecH265, []byte{19 << 1, 1}, true},
		{"h265 vps", codecH265, []byte{32 << 1, 1}, true},
		{"h265 trail", codecH265, []byte{1 << 1, 1}, false},
		{"h265 ap with sps", codecH265, []byte{48 << 1, 1, 0, 2, 33 << 1, 1}, true},
		{"h265 fu idr start", codecH265, []byte{49 << 1, 1, 0x80 | 20}, true},
		{"h265 fu trail start", codecH265, []byte{49 << 1, 1, 0x80 | 1}, false},
		{"other codec", codecOther, []byte{0x65}, false},
	}
	for _, c := range cases {
		if got := isKeyPayload(c.c, c.p); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}

func FuzzKeyDetection(f *testing.F) {
	f.Add([]byte{0x78, 0, 2, 0x67, 0})
	f.Add([]byte{48 << 1, 1, 0, 2, 33 << 1, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		isKeyPayload(codecH264, p)
		isKeyPayload(codecH265, p)
	})
}

func TestStreamGOPCacheAndFanout(t *testing.T) {
	var c Counters
	s := newStream(h264Desc(), &c)
	f := s.desc.Medias[0].Formats[0]
	// P frames before any keyframe are not cached.
	s.WriteRTP(0, f, nal(1, 0, 0), time.Now())
	// GOP 1: SPS PPS IDR (one access unit) then two P frames.
	for i, ty := range []byte{7, 8, 5} {
		s.WriteRTP(0, f, nal(ty, 3000, uint16(1+i)), time.Now())
	}
	s.WriteRTP(0, f, nal(1, 6000, 4), time.Now())
	s.WriteRTP(1, s.desc.Medias[1].Formats[0], &rtp.Packet{Header: rtp.Header{PayloadType: 8}, Payload: []byte{0xff}}, time.Now())
	s.WriteRTP(0, f, nal(1, 9000, 5), time.Now())

	r1 := &recorder{}
	s.AddReader(r1)
	if want := []byte{7, 8, 5, 1, 1}; string(r1.got) != string(want) {
		t.Fatalf("first reader got %v, want cached group %v", r1.got, want)
	}
	// GOP 2 replaces GOP 1; the IDR's access unit starts at its SPS.
	for i, ty := range []byte{7, 8, 5} {
		s.WriteRTP(0, f, nal(ty, 12000, uint16(6+i)), time.Now())
	}
	s.WriteRTP(0, f, nal(1, 15000, 9), time.Now())
	r2 := &recorder{}
	s.AddReader(r2)
	if want := []byte{7, 8, 5, 1}; string(r2.got) != string(want) {
		t.Fatalf("second reader got %v, want %v", r2.got, want)
	}
	if want := []byte{7, 8, 5, 1, 1, 7, 8, 5, 1}; string(r1.got) != string(want) {
		t.Fatalf("first reader live packets %v, want %v", r1.got, want)
	}
	slow := &recorder{refuse: true}
	s.AddReader(slow)
	s.WriteRTP(0, f, nal(1, 18000, 10), time.Now())
	if c.Dropped.Load() == 0 {
		t.Fatal("refused packets not counted as dropped")
	}
	s.RemoveReader(r2)
	s.WriteRTP(0, f, nal(1, 21000, 11), time.Now())
	if len(r2.got) != 5 {
		t.Fatalf("removed reader still fed: %v", r2.got)
	}
	s.close(ErrStreamClosed)
	if !errors.Is(r1.closed, ErrStreamClosed) || !errors.Is(slow.closed, ErrStreamClosed) {
		t.Fatal("readers not closed with the stream")
	}
	late := &recorder{}
	s.AddReader(late)
	if late.closed == nil {
		t.Fatal("reader added to a closed stream not closed")
	}
	if c.PacketsIn.Load() != 13 {
		t.Fatalf("packets in = %d", c.PacketsIn.Load())
	}
}

func TestGOPCacheBounded(t *testing.T) {
	var c Counters
	s := newStream(h264Desc(), &c)
	f := s.desc.Medias[0].Formats[0]
	s.WriteRTP(0, f, nal(5, 0, 0), time.Now())
	for i := 1; i <= gopMaxPackets+10; i++ {
		s.WriteRTP(0, f, nal(1, uint32(i*3000), uint16(i)), time.Now())
	}
	r := &recorder{}
	s.AddReader(r)
	if len(r.got) != 0 {
		t.Fatalf("over-long group still cached: %d packets", len(r.got))
	}
	s.WriteRTP(0, f, nal(5, 1, 1), time.Now())
	r2 := &recorder{}
	s.AddReader(r2)
	if len(r2.got) != 1 {
		t.Fatalf("cache did not restart at the next IDR: %v", r2.got)
	}
}

func TestQueueDropsUntilKeyframe(t *testing.T) {
	desc := h264Desc()
	mk := func(key bool) *Packet {
		p := newPacket(nal(1, 0, 0))
		p.Media, p.Key, p.Keyed = desc.Medias[0], key, true
		return p
	}
	q := NewQueue(2)
	var pkts []*Packet
	for _, key := range []bool{true, false, false, false, true, false} {
		pkts = append(pkts, mk(key))
	}
	var ok []bool
	for _, p := range pkts[:4] {
		ok = append(ok, q.Push(p))
	}
	if fmt.Sprint(ok) != "[true true false false]" {
		t.Fatalf("push results %v", ok)
	}
	dst := make([]*Packet, 4)
	n, err := q.Pop(context.Background(), dst)
	if err != nil || n != 2 {
		t.Fatalf("pop: %d %v", n, err)
	}
	for _, p := range dst[:n] {
		p.Release()
	}
	// Room again, but the queue waits for a keyframe after its loss.
	if q.Push(pkts[3]) {
		t.Fatal("non-key packet accepted after a drop")
	}
	if !q.Push(pkts[4]) || !q.Push(pkts[5]) {
		t.Fatal("keyframe or its successor refused")
	}
	if q.Dropped() != 3 {
		t.Fatalf("dropped = %d, want 3", q.Dropped())
	}
	q.Close()
	if _, err := q.Pop(context.Background(), dst); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("pop after close: %v", err)
	}
	for _, p := range pkts {
		if p.refs.Load() != 1 {
			t.Fatalf("packet refs = %d after queue close, want 1 (ours)", p.refs.Load())
		}
		p.Release()
	}
}

// TestQueueGrowsToItsBoundInOrder fills a queue whose ring wrapped past its
// initial size: the bound is exact and the order survives every growth.
func TestQueueGrowsToItsBoundInOrder(t *testing.T) {
	const size = 300 // not a power of two, above queueInitial
	q := NewQueue(size)
	var seq uint16
	mk := func() *Packet {
		p := newPacket(nal(1, 0, 0))
		p.RTP.SequenceNumber = seq
		seq++
		return p
	}
	// Wrap the initial ring first: push 40, pop 30, then fill.
	var pushed []*Packet
	push := func(n int) {
		for range n {
			p := mk()
			pushed = append(pushed, p)
			if !q.Push(p) {
				t.Fatalf("packet %d refused with %d queued", p.RTP.SequenceNumber, q.Len())
			}
		}
	}
	push(40)
	dst := make([]*Packet, 30)
	var next uint16
	pop := func() int {
		n, err := q.Pop(context.Background(), dst)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range dst[:n] {
			if p.RTP.SequenceNumber != next {
				t.Fatalf("popped seq %d, want %d", p.RTP.SequenceNumber, next)
			}
			next++
			p.Release()
		}
		return n
	}
	pop()
	push(size - 10)
	if q.Len() != size {
		t.Fatalf("len = %d, want %d", q.Len(), size)
	}
	extra := mk()
	if q.Push(extra) {
		t.Fatal("a full queue accepted a packet")
	}
	extra.Release()
	for q.Len() > 0 {
		pop()
	}
	if int(next) != len(pushed) {
		t.Fatalf("popped %d of %d", next, len(pushed))
	}
	for _, p := range pushed {
		if p.refs.Load() != 1 {
			t.Fatalf("refs = %d after pop, want 1 (ours)", p.refs.Load())
		}
		p.Release()
	}
}

func TestQueuePopWaitsAndHonoursContext(t *testing.T) {
	q := NewQueue(4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Pop(ctx, make([]*Packet, 1))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("pop after cancel: %v", err)
	}
}

// queueReader drains its queue inline so benchmarks need no goroutines.
type queueReader struct {
	q   *Queue
	dst []*Packet
}

func (r *queueReader) WritePacket(p *Packet) bool { return r.q.Push(p) }
func (r *queueReader) Close(error)                {}
func (r *queueReader) drain() {
	for r.q.Len() > 0 {
		n, _ := r.q.Pop(context.Background(), r.dst)
		for _, p := range r.dst[:n] {
			p.Release()
		}
	}
}

// BenchmarkFanout measures one packet in, delivered to N queued readers.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			var c Counters
			s := newStream(h264Desc(), &c)
			f := s.desc.Medias[0].Formats[0]
			rs := make([]*queueReader, n)
			for i := range rs {
				rs[i] = &queueReader{q: NewQueue(256), dst: make([]*Packet, 64)}
				s.AddReader(rs[i])
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: make([]byte, 1200)}
			pkt.Payload[0] = 0x41
			now := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt.Payload)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pkt.SequenceNumber = uint16(i)
				pkt.Timestamp = uint32(i / 4 * 3600)
				if i%50 == 0 {
					pkt.Payload[0] = 0x65
				} else {
					pkt.Payload[0] = 0x41
				}
				s.WriteRTP(0, f, pkt, now)
				if i%64 == 63 {
					for _, r := range rs {
						r.drain()
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkGOPCache measures the keyframe-group cache alone (no readers).
func BenchmarkGOPCache(b *testing.B) {
	var c Counters
	s := newStream(h264Desc(), &c)
	f := s.desc.Medias[0].Formats[0]
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: make([]byte, 1200)}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		pkt.Timestamp = uint32(i / 4 * 3600)
		if i%200 == 0 {
			pkt.Payload[0] = 0x65
		} else {
			pkt.Payload[0] = 0x41
		}
		s.WriteRTP(0, f, pkt, now)
	}
}

func TestSenderClock(t *testing.T) {
	desc := h264Desc()
	s := newStream(desc, &Counters{})
	f := desc.Medias[0].Formats[0]
	if _, _, ok := s.SenderClock(0, time.Now()); ok {
		t.Fatal("clock known before any packet")
	}
	ntp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key := nal(5, 1, 1)
	key.Timestamp = 1000
	s.WriteRTP(0, f, key, ntp)
	p := nal(1, 0, 0)
	p.Timestamp = 999999 // a later non-key frame does not move the clock
	s.WriteRTP(0, f, p, ntp.Add(time.Hour))
	s.mu.Lock()
	at := s.clocks[0].at
	s.mu.Unlock()
	ts, got, ok := s.SenderClock(0, at.Add(500*time.Millisecond))
	if !ok || ts != 1000+45000 || !got.Equal(ntp.Add(500*time.Millisecond)) {
		t.Fatalf("clock 0.5 s after the keyframe: %d %v %v", ts, got, ok)
	}
	if _, _, ok := s.SenderClock(0, at.Add(2*time.Minute)); ok {
		t.Fatal("a clock two minutes stale still reported")
	}
	s.resetGOP()
	if _, _, ok := s.SenderClock(0, at); ok {
		t.Fatal("clock survived the source's reconnection")
	}
}

// TestFanoutDoesNotAllocate guards the claim of BenchmarkFanout: once
// warm, a packet in, delivered to 10 queued readers, allocates nothing.
// Measured per batch of 64 packets (AllocsPerRun rounds down), so it fails
// from one allocation in 64 packets.
func TestFanoutDoesNotAllocate(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var c Counters
	s := newStream(h264Desc(), &c)
	f := s.desc.Medias[0].Formats[0]
	rs := make([]*queueReader, 10)
	for i := range rs {
		rs[i] = &queueReader{q: NewQueue(256), dst: make([]*Packet, 64)}
		s.AddReader(rs[i])
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: make([]byte, 1200)}
	now := time.Now()
	i := 0
	batch := func() {
		for range 64 {
			pkt.SequenceNumber = uint16(i)
			pkt.Timestamp = uint32(i / 4 * 3600)
			pkt.Payload[0] = 0x41
			if i%50 == 0 {
				pkt.Payload[0] = 0x65
			}
			s.WriteRTP(0, f, pkt, now)
			i++
		}
		for _, r := range rs {
			r.drain()
		}
	}
	for range 20 { // warm: pools, queues and the keyframe cache at size
		batch()
	}
	if n := testing.AllocsPerRun(200, batch); n != 0 {
		t.Fatalf("%v allocations per 64 packets fanned out to 10 readers", n)
	}
}
