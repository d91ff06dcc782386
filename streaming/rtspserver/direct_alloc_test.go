//go:build unix

package rtspserver

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// directFixture is a publisher path with a TCP and a UDP reader written
// directly (as OnPlay sets them up), their far ends on loopback.
type directFixture struct {
	m       *streaming.Manager
	pub     *streaming.Publication
	media   *description.Media
	forma   format.Format
	tcp     *directOut
	udp     *directOut
	udpPeer *net.UDPConn
	seq     uint16
	ts      uint32
	aus     int
	payload [1200]byte
	pkt     rtp.Packet
}

const (
	fixtureTCPSSRC = 0x1111
	fixtureUDPSSRC = 0x2222
)

func newDirectFixture(t testing.TB) *directFixture {
	t.Helper()
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: zerolog.Nop()},
		map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}}
	pub, err := m.Publish("cam", desc, streaming.ReaderRequest{}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	st := pub.Stream()
	fx := &directFixture{m: m, pub: pub, media: desc.Medias[0], forma: f}

	// TCP: the far end reads everything.
	srv, cli := tcpPair(t)
	go func() { _, _ = io.Copy(io.Discard, cli) }()
	w := newWire(1)
	w.channel[0], w.rtcpChannel[0], w.ssrc[0] = 0, 1, fixtureTCPSSRC
	fx.tcp = newDirectOut(streaming.NewQueue(512), w, nil, nil, st, 5*time.Second)
	fx.tcp.conn = newBatchConn(srv)

	// UDP: from a socket like the server's RTP socket to a peer.
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if fx.udpPeer, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.udpPeer.Close() })
	peer := fx.udpPeer.LocalAddr().(*net.UDPAddr).AddrPort()
	w = newWire(1)
	w.port[0], w.rtcpPort[0], w.ssrc[0] = int(peer.Port()), int(peer.Port())+1, fixtureUDPSSRC
	fx.udp = newDirectOut(streaming.NewQueue(512), w, nil, nil, st, 5*time.Second)
	fx.udp.udp = newUDPSocket(sock)
	fx.udp.addrs = []netip.AddrPort{peer}
	fx.udp.rtcpAddrs = []netip.AddrPort{{}}
	fx.udp.dests = []udpDest{makeUDPDest(fx.udp.udp.family, peer)}

	for _, out := range []*directOut{fx.tcp, fx.udp} {
		r := newReader(nil, nil, st, desc.Medias, time.Minute)
		r.out = out
		done := make(chan struct{})
		go func() {
			defer close(done)
			out.run()
		}()
		out.begin()
		// Attached once its writer has handed the output to the stream
		// (until then everything is queued), as a reader playing for a
		// moment is.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			out.mu.Lock()
			busy := out.busy
			out.mu.Unlock()
			if !busy || !out.inline() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer never went inline")
			}
		}
		st.AddReader(r)
		t.Cleanup(func() {
			st.RemoveReader(r)
			r.release()
			<-done
		})
	}
	return fx
}

// accessUnit publishes one access unit of 8 FU-A fragments of 1 200
// bytes, a keyframe every 50th.
func (fx *directFixture) accessUnit() {
	key := fx.aus%50 == 0
	fx.aus++
	fx.ts += 3600
	pkt, payload := &fx.pkt, fx.payload[:]
	pkt.Version, pkt.PayloadType, pkt.SSRC, pkt.Timestamp = 2, 96, 0xcafe, fx.ts
	typ := byte(1)
	if key {
		typ = 5
	}
	for i := range 8 {
		payload[0] = 0x7c // FU-A
		payload[1] = typ
		if i == 0 {
			payload[1] |= 0x80
		}
		if i == 7 {
			payload[1] |= 0x40
		}
		pkt.SequenceNumber = fx.seq
		fx.seq++
		pkt.Marker = i == 7
		pkt.Payload = payload
		fx.pub.WriteRTP(fx.media, fx.forma, pkt, time.Now())
	}
}

// TestDirectReadersDoNotAllocate guards the claim that relaying to a TCP
// and a UDP reader written directly allocates nothing per packet: an
// access unit of 8 packets, in from the publisher and out to both
// readers' sockets (inline on Linux, through their goroutines elsewhere),
// allocates nothing once warm. Measured per access unit, so it fails
// from one allocation in 8 packets.
func TestDirectReadersDoNotAllocate(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	fx := newDirectFixture(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := fx.udpPeer.Read(buf); err != nil {
				return
			}
		}
	}()
	for range 200 { // warm: pools, queues and the keyframe cache at size
		fx.accessUnit()
	}
	// Without collections: one empties sync.Pools (the packets' among
	// them), and refilling them is the collector's cost, not this path's.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	for range 200 {
		fx.accessUnit()
	}
	// testing.AllocsPerRun would run this with GOMAXPROCS=1, where the
	// far ends cannot read while access units go out: the readers would
	// fall behind and be queued. Counted by hand, with them reading.
	const runs = 500
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		fx.accessUnit()
	}
	runtime.ReadMemStats(&after)
	if n := (after.Mallocs - before.Mallocs) / runs; n != 0 {
		t.Fatalf("%v allocations per access unit relayed to a TCP and a UDP reader", n)
	}
	for name, out := range map[string]*directOut{"tcp": fx.tcp, "udp": fx.udp} {
		// The last access units may still be on their way on the
		// goroutine path.
		deadline := time.Now().Add(5 * time.Second)
		for out.sent[0].packets.Load() < uint32(fx.aus*8) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := out.sent[0].packets.Load(); got != uint32(fx.aus*8) {
			t.Errorf("%s reader: %d of %d packets sent (queue dropped %d)", name, got, fx.aus*8, out.q.Dropped())
		}
	}
}

// TestUDPReaderDatagrams: a UDP reader written directly gets every packet
// as a datagram of its own, in order, with its session's SSRC and the
// payload intact, from the server's socket.
func TestUDPReaderDatagrams(t *testing.T) {
	checkUDPDatagrams(t, newDirectFixture(t))
}

// checkUDPDatagrams publishes 20 access units and checks that the UDP
// reader's peer gets each of their packets, whole and in order.
func checkUDPDatagrams(t *testing.T, fx *directFixture) {
	t.Helper()
	const aus = 20
	// Read while sending, an access unit at a time: 160 datagrams sent at
	// once are more than a socket's default receive buffer holds.
	type datagram struct {
		b   []byte
		src netip.AddrPort
		err error
	}
	got := make(chan datagram, aus*8)
	go func() {
		_ = fx.udpPeer.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range aus * 8 {
			buf := make([]byte, 2048)
			n, src, err := fx.udpPeer.ReadFromUDPAddrPort(buf)
			got <- datagram{buf[:n], src, err}
			if err != nil {
				return
			}
		}
	}()
	from := fx.udp.udp.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range aus * 8 {
		if i%8 == 0 {
			fx.accessUnit()
		}
		d := <-got
		if d.err != nil {
			t.Fatalf("datagram %d: %v", i, d.err)
		}
		if d.src != from {
			t.Fatalf("datagram %d from %v, want the server's socket %v", i, d.src, from)
		}
		buf, n := d.b, len(d.b)
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if p.SSRC != fixtureUDPSSRC || p.SequenceNumber != uint16(i) || len(p.Payload) != 1200 || p.Marker != (i%8 == 7) {
			t.Fatalf("datagram %d: ssrc %#x seq %d payload %d marker %v", i, p.SSRC, p.SequenceNumber, len(p.Payload), p.Marker)
		}
		if fu := p.Payload[1]; (i%8 == 0) != (fu&0x80 != 0) {
			t.Fatalf("datagram %d: FU header %#x out of order", i, fu)
		}
		if got := binary.BigEndian.Uint32(buf[8:]); got != fixtureUDPSSRC {
			t.Fatalf("datagram %d: wire SSRC %#x", i, got)
		}
	}
}

// BenchmarkDirectReaders measures an access unit of 8 packets relayed to
// one TCP and one UDP reader written directly.
func BenchmarkDirectReaders(b *testing.B) {
	fx := newDirectFixture(b)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := fx.udpPeer.Read(buf); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		fx.accessUnit()
	}
}

// TestUDPReaderOutlivesStaleDeadlines: the server's RTP socket is shared,
// and its write deadline may have passed (set long ago, or by gortsplib for
// a write of its own): a UDP reader written directly still gets its
// packets, inline and from its goroutine.
func TestUDPReaderOutlivesStaleDeadlines(t *testing.T) {
	fx := newDirectFixture(t)
	got := make(chan int, 1024)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := fx.udpPeer.Read(buf)
			if err != nil {
				return
			}
			got <- n
		}
	}()
	expect := func(what string) {
		t.Helper()
		fx.accessUnit()
		timeout := time.After(5 * time.Second)
		for range 8 {
			select {
			case <-got:
			case <-timeout:
				t.Fatalf("%s: an access unit did not arrive", what)
			}
		}
	}
	expect("first")
	// gortsplib set a deadline that has passed on the shared socket.
	_ = fx.udp.udp.conn.SetWriteDeadline(time.Now().Add(-time.Second))
	expect("after gortsplib's stale deadline")
	// The writers' own deadline passed: nobody wrote for a while.
	fx.udp.udp.deadline.Store(time.Now().Add(-time.Second).UnixNano())
	_ = fx.udp.udp.conn.SetWriteDeadline(time.Now().Add(-time.Second))
	expect("after the shared deadline passed")
	// Through the reader's goroutine (the queue path).
	fx.udp.mu.Lock()
	fx.udp.handOver()
	fx.udp.mu.Unlock()
	_ = fx.udp.udp.conn.SetWriteDeadline(time.Now().Add(-time.Second))
	expect("from the reader's goroutine")
	if info, _ := fx.m.Path("cam"); info.Dropped != 0 {
		t.Fatalf("%d packets dropped", info.Dropped)
	}
}
