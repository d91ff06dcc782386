//go:build linux

package mmsg

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The array sendmmsg reads has the kernel's stride on every architecture.
func TestHdrLayout(t *testing.T) {
	if got := unsafe.Sizeof(Hdr{}); got != unix.SizeofMmsghdr {
		t.Fatalf("Hdr is %d bytes, struct mmsghdr %d", got, unix.SizeofMmsghdr)
	}
}

func TestMakeDest(t *testing.T) {
	v4 := netip.MustParseAddrPort("127.0.0.1:5004")
	v6 := netip.MustParseAddrPort("[::1]:5004")
	for _, tc := range []struct {
		name   string
		family int
		ap     netip.AddrPort
		valid  bool
	}{
		{"ipv4 on ipv4", unix.AF_INET, v4, true},
		{"mapped ipv4 on ipv4", unix.AF_INET, netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), 5004), true},
		{"ipv6 on ipv4", unix.AF_INET, v6, false},
		{"ipv4 on dual stack", unix.AF_INET6, v4, true},
		{"none", unix.AF_INET, netip.AddrPort{}, false},
	} {
		d := MakeDest(tc.family, tc.ap)
		if d.Valid() != tc.valid {
			t.Errorf("%s: valid = %v", tc.name, d.Valid())
		}
	}
}

// loopbackPair returns a peer socket, and a sending socket with its raw
// connection, both on 127.0.0.1 and closed with the test.
func loopbackPair(t *testing.T) (peer, c *net.UDPConn, raw syscall.RawConn) {
	t.Helper()
	var err error
	for _, p := range []**net.UDPConn{&peer, &c} {
		if *p, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = (*p).Close() })
	}
	if raw, err = c.SyscallConn(); err != nil {
		t.Fatal(err)
	}
	return peer, c, raw
}

// Send delivers a batch in order, each datagram whole, in one call.
func TestSendBatch(t *testing.T) {
	peer, c, raw := loopbackPair(t)
	d := MakeDest(SocketFamily(c), peer.LocalAddr().(*net.UDPAddr).AddrPort())
	if SocketFamily(c) != unix.AF_INET || !d.Valid() {
		t.Fatalf("family %d, dest valid %v", SocketFamily(c), d.Valid())
	}
	// Two pieces per datagram, as the RTSP server sends them.
	heads := [][]byte{[]byte("a-"), []byte("bb-"), []byte("ccc-")}
	bodies := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	iov := make([][2]unix.Iovec, 3)
	hs := make([]Hdr, 3)
	for i := range hs {
		iov[i][0].Base, iov[i][1].Base = &heads[i][0], &bodies[i][0]
		iov[i][0].SetLen(len(heads[i]))
		iov[i][1].SetLen(len(bodies[i]))
		hs[i].Set(&d, iov[i][:])
	}
	n, err := Send(raw, hs, true)
	if err != nil || n != 3 {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if err := peer.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := range 3 {
		m, err := peer.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := string(heads[i]) + string(bodies[i]); string(buf[:m]) != want {
			t.Errorf("datagram %d = %q, want %q", i, buf[:m], want)
		}
	}
	if n, err := Send(raw, nil, true); n != 0 || err != nil {
		t.Errorf("empty Send = %d, %v", n, err)
	}
}
