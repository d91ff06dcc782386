//go:build linux

package webrtc

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/streaming"
)

// listenUDP returns a loopback UDP socket closed with the test.
func listenUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pending returns a datagram waiting on c, if one is. Loopback delivers
// inside the sender's system call, so a datagram sent is already there.
// (A read with a past deadline would not even look: Go fails it first.)
func pending(t *testing.T, c *net.UDPConn) ([]byte, bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if errors.Is(rerr, unix.EAGAIN) {
		return nil, false
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	return buf[:n], true
}

func TestBatchConnHoldsUntilRelease(t *testing.T) {
	for _, tc := range []struct{ name, network, local, peer string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1:0"},
		// A dual-stack socket reads IPv4 peers as ::ffff:a.b.c.d; the
		// session names them as the candidate does.
		{"dual-stack", "udp", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.network == "udp" && !inLoopbackNamespace(t) {
				return
			}
			sock := listenUDP(t, tc.network, tc.local)
			bc, err := newBatchConn(sock)
			if err != nil {
				t.Fatal(err)
			}
			peer := listenUDP(t, "udp4", tc.peer)
			pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			wireAddr := pa
			if tc.network == "udp" {
				wireAddr = netip.AddrPortFrom(netip.AddrFrom16(pa.Addr().As16()), pa.Port())
			}
			other := listenUDP(t, "udp4", "127.0.0.1:0")

			bc.hold(pa)
			bc.hold(pa) // holds nest
			var sent [][]byte
			for i := range 10 {
				d := bytes.Repeat([]byte{byte(i)}, 100+i*100)
				sent = append(sent, d)
				if n, err := bc.WriteToAddrPort(d, wireAddr); err != nil || n != len(d) {
					t.Fatalf("write %d = %d, %v", i, n, err)
				}
			}
			// Another peer is not held: its datagram goes at once.
			if _, err := bc.WriteToAddrPort([]byte("now"), other.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
			if got, ok := pending(t, other); !ok || string(got) != "now" {
				t.Fatalf("unheld peer got %q, %v", got, ok)
			}
			if _, ok := pending(t, peer); ok {
				t.Fatal("a held datagram went out before release")
			}
			bc.release(pa)
			if _, ok := pending(t, peer); ok {
				t.Fatal("a datagram went out while one hold remained")
			}
			bc.release(pa)
			expectDatagrams(t, peer, sent)
			if s, b := bc.sends.Load(), bc.batched.Load(); s != 1 || b != 10 {
				t.Errorf("sendmmsg calls %d carrying %d datagrams, want 1 and 10", s, b)
			}
			// Unheld again: written at once.
			if _, err := bc.WriteToAddrPort([]byte("after"), wireAddr); err != nil {
				t.Fatal(err)
			}
			if got, ok := pending(t, peer); !ok || string(got) != "after" {
				t.Fatalf("after release got %q, %v", got, ok)
			}
			// forget sends what is held and drops the queue.
			bc.hold(pa)
			if _, err := bc.WriteToAddrPort([]byte("last"), wireAddr); err != nil {
				t.Fatal(err)
			}
			bc.forget(pa)
			if got, ok := pending(t, peer); !ok || string(got) != "last" {
				t.Fatalf("after forget got %q, %v", got, ok)
			}
			if n := bc.heldCount(); n != 0 {
				t.Errorf("%d queues after forget", n)
			}
		})
	}
}

func TestBatchConnFlushesAtBounds(t *testing.T) {
	bc, err := newBatchConn(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	peer := listenUDP(t, "udp4", "127.0.0.1:0")
	if err := peer.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	bc.hold(pa)
	d := make([]byte, 200)
	for range batchMaxDatagrams {
		if _, err := bc.WriteToAddrPort(d, pa); err != nil {
			t.Fatal(err)
		}
	}
	// The bound sent the batch without waiting for the release.
	for i := range batchMaxDatagrams {
		if _, ok := pending(t, peer); !ok {
			t.Fatalf("held past the bound: datagram %d missing", i)
		}
	}
	bc.release(pa)
	if s := bc.sends.Load(); s != 1 {
		t.Errorf("sendmmsg calls = %d, want 1", s)
	}
}

func TestBatchConnDoesNotAllocate(t *testing.T) {
	if raceOn {
		t.Skip("the race detector allocates")
	}
	bc, err := newBatchConn(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	peer := listenUDP(t, "udp4", "127.0.0.1:0")
	if err := peer.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	d := make([]byte, 1200)
	au := func() {
		bc.hold(pa)
		for range 9 {
			_, _ = bc.WriteToAddrPort(d, pa)
		}
		bc.release(pa)
	}
	au() // the queue's buffers grow once
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(50, func() {
		au()
		for range 9 {
			_, _, _ = peer.ReadFromUDPAddrPort(buf)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per access unit, want 0", allocs)
	}
}

// A playing session's media leaves in batches, and its queue goes with it.
func TestWHEPSendsAccessUnitsInBatches(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, true)
	srv := startServer(t, Options{Paths: m, Lister: m})

	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	waitFor(t, "two keyframes' worth of video", 10*time.Second, func() bool { return c.video.Load() >= 60 })
	bc := srv.ice.batch
	if s, b := bc.sends.Load(), bc.batched.Load(); s == 0 || b <= s {
		t.Errorf("sendmmsg calls %d carrying %d datagrams: want batches of more than one (keyframes are 4+ packets)", s, b)
	}
	t.Logf("gso %v: %d sendmmsg calls, %d datagrams, %d of them in segmented messages", bc.gso, bc.sends.Load(), bc.batched.Load(), bc.cut.Load())
	if bc.gso && bc.cut.Load() == 0 {
		t.Error("no datagram went in a segmented message (a keyframe's fragments are a run of full packets)")
	}
	if n := bc.heldCount(); n != 1 {
		t.Errorf("%d peer queues while one session plays, want 1", n)
	}
	res, _ := doRequest(t, http.MethodDelete, srv.base+c.loc, "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", res.StatusCode)
	}
	if n := bc.heldCount(); n != 0 {
		t.Errorf("%d peer queues after DELETE, want 0", n)
	}
	if d := srv.SendDropped(); d != 0 {
		t.Errorf("%d datagrams dropped on loopback", d)
	}
}

// A datagram the kernel refuses is counted and lost alone: the ones
// around it still go, in order.
func TestBatchConnDropsWhatTheKernelRefuses(t *testing.T) {
	bc, err := newBatchConn(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	peer := listenUDP(t, "udp4", "127.0.0.1:0")
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	bc.hold(pa)
	// 65 520 bytes: within a queue's bound, beyond what IPv4 UDP carries.
	for _, d := range [][]byte{[]byte("before"), make([]byte, 65520), []byte("after")} {
		if _, err := bc.WriteToAddrPort(d, pa); err != nil {
			t.Fatal(err)
		}
	}
	bc.release(pa)
	for _, want := range []string{"before", "after"} {
		got, ok := pending(t, peer)
		if !ok || string(got) != want {
			t.Fatalf("got %q (%v), want %q", got, ok, want)
		}
	}
	if _, ok := pending(t, peer); ok {
		t.Error("the oversized datagram arrived")
	}
	if d := bc.droppedCount(); d != 1 {
		t.Errorf("dropped = %d, want 1", d)
	}
}

// auDatagrams is a frame as the batch sees it: eight full fragments of
// one NAL unit and its shorter last one, then a second NAL unit of three,
// each datagram's bytes its index.
func auDatagrams() [][]byte {
	var ds [][]byte
	for i, size := range []int{1228, 1228, 1228, 1228, 1228, 1228, 1228, 1228, 500, 300, 300, 120} {
		ds = append(ds, bytes.Repeat([]byte{byte(i)}, size))
	}
	return ds
}

// writeAU holds pa, writes ds to it and releases it.
func writeAU(t *testing.T, bc *batchConn, pa netip.AddrPort, ds [][]byte) {
	t.Helper()
	bc.hold(pa)
	for _, d := range ds {
		if n, err := bc.WriteToAddrPort(d, pa); err != nil || n != len(d) {
			t.Fatalf("write = %d, %v", n, err)
		}
	}
	bc.release(pa)
}

// expectDatagrams checks that peer has exactly ds waiting, in order.
func expectDatagrams(t *testing.T, peer *net.UDPConn, ds [][]byte) {
	t.Helper()
	for i, want := range ds {
		got, ok := pending(t, peer)
		if !ok {
			t.Fatalf("datagram %d missing", i)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("datagram %d: %d bytes of %d, want %d of %d", i, len(got), got[0], len(want), want[0])
		}
	}
	if got, ok := pending(t, peer); ok {
		t.Fatalf("an extra datagram of %d bytes", len(got))
	}
}

// A frame's runs of full fragments leave as segmented messages, and the
// peer reads the same datagrams as if each had been sent alone.
func TestBatchConnSegmentsRuns(t *testing.T) {
	bc, err := newBatchConn(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	if !bc.gso {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	peer := listenUDP(t, "udp4", "127.0.0.1:0")
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	ds := auDatagrams()
	writeAU(t, bc, pa, ds)
	expectDatagrams(t, peer, ds)
	// 8 full + 1 short, then 300 + 300 + 120: two segmented messages.
	if s, b, c := bc.sends.Load(), bc.batched.Load(), bc.cut.Load(); s != 1 || b != 12 || c != 12 {
		t.Errorf("sendmmsg calls %d carrying %d datagrams, %d of them segmented; want 1, 12, 12", s, b, c)
	}
}

// A peer whose route refuses segmented messages gets plain datagrams:
// nothing is lost, and it is not tried again for that peer. A socket that
// sends without UDP checksums (SO_NO_CHECK) is refused segmentation by
// the kernel, as a device without checksum offload would be.
func TestBatchConnFallsBackToPlainDatagrams(t *testing.T) {
	sock := listenUDP(t, "udp4", "127.0.0.1:0")
	bc, err := newBatchConn(sock)
	if err != nil {
		t.Fatal(err)
	}
	if !bc.gso {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Skipf("SO_NO_CHECK: %v %v", err, serr)
	}
	peer := listenUDP(t, "udp4", "127.0.0.1:0")
	pa := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	ds := auDatagrams()
	writeAU(t, bc, pa, ds)
	expectDatagrams(t, peer, ds)
	writeAU(t, bc, pa, ds)
	expectDatagrams(t, peer, ds)
	if d, c := bc.droppedCount(), bc.cut.Load(); d != 0 || c != 0 {
		t.Errorf("dropped %d, segmented %d; want 0 and 0", d, c)
	}
	// The first frame tried once and fell back; the second did not try.
	if s := bc.sends.Load(); s != 3 {
		t.Errorf("sendmmsg calls = %d, want 3 (a refused try, its plain resend, the next frame)", s)
	}
}
