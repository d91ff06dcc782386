//go:build linux

package mmsg

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The segment size sits where CMSG_DATA is on every architecture, and the
// control message fits the struct it is written in.
func TestSegmentLayout(t *testing.T) {
	var s segment
	if off := unsafe.Offsetof(s.data); int(off) != unix.CmsgLen(0) {
		t.Fatalf("segment size at offset %d, CMSG_DATA at %d", off, unix.CmsgLen(0))
	}
	if size := unsafe.Sizeof(s); int(size) < unix.CmsgSpace(2) {
		t.Fatalf("segment is %d bytes, the control message %d", size, unix.CmsgSpace(2))
	}
}

func TestBatchJoinsRuns(t *testing.T) {
	var a, b Dest
	buf := make([]byte, 64<<10)
	iov := func(n int) []unix.Iovec {
		v := []unix.Iovec{{Base: &buf[0]}}
		v[0].SetLen(n)
		return v
	}
	type dg struct {
		d    *Dest
		size int
	}
	for _, tc := range []struct {
		name string
		gso  bool
		in   []dg
		want []int // datagrams per message
	}{
		{"a frame: full fragments, a short last", true,
			[]dg{{&a, 1200}, {&a, 1200}, {&a, 1200}, {&a, 700}}, []int{4}},
		{"a run ends after its short datagram", true,
			[]dg{{&a, 1200}, {&a, 500}, {&a, 500}, {&a, 500}}, []int{2, 2}},
		{"a longer datagram starts a run", true,
			[]dg{{&a, 300}, {&a, 1200}, {&a, 1200}}, []int{1, 2}},
		{"another destination starts a run", true,
			[]dg{{&a, 1200}, {&a, 1200}, {&b, 1200}, {&b, 1200}}, []int{2, 2}},
		{"without gso, a message each", false,
			[]dg{{&a, 1200}, {&a, 1200}, {&a, 1200}}, []int{1, 1, 1}},
		{"64 segments at most", true, nil, []int{64, 6}},
		{"at most MaxGSOBytes", true, nil, []int{33, 31}}, // 33 × 1 900 = 62 700
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			switch tc.name {
			case "64 segments at most":
				for range 70 {
					in = append(in, dg{&a, 100})
				}
			case "at most MaxGSOBytes":
				for range 64 {
					in = append(in, dg{&a, 1900})
				}
			}
			var bt Batch
			for _, d := range in {
				bt.Add(d.d, iov(d.size), tc.gso)
			}
			var got []int
			for i := range bt.Len() {
				got = append(got, bt.Datagrams(i, i+1))
				if bt.Segmented(i) != (got[i] > 1) {
					t.Errorf("message %d: segmented %v with %d datagrams", i, bt.Segmented(i), got[i])
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("messages %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("messages %v, want %v", got, tc.want)
				}
			}
			if n := bt.Datagrams(0, bt.Len()); n != len(in) {
				t.Errorf("%d datagrams in the messages, %d added", n, len(in))
			}
		})
	}
	// A destination that failed a segmented message gets plain ones.
	var bt Batch
	bt.Add(&a, iov(1200), true)
	bt.Add(&a, iov(1200), true)
	if !bt.RetryPlain(0, unix.EIO) {
		t.Fatal("a segmented message refused with EIO is not retried plain")
	}
	if !a.PlainOnly() {
		t.Fatal("RetryPlain did not mark the destination")
	}
	bt.Reset()
	bt.Add(&a, iov(1200), true)
	bt.Add(&a, iov(1200), true)
	if bt.Len() != 2 || bt.Unsegmented(0, 2) != 2 {
		t.Errorf("after a failure: %d messages, %d plain; want 2 and 2", bt.Len(), bt.Unsegmented(0, 2))
	}
}

// Segmented messages arrive as the datagrams they were made of; a socket
// the kernel will not segment for reports an error IsGSOError knows.
func TestSendSegmented(t *testing.T) {
	peer, c, raw := loopbackPair(t)
	if !GSO(raw) {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	d := MakeDest(SocketFamily(c), peer.LocalAddr().(*net.UDPAddr).AddrPort())
	// Two pieces per datagram (a header and a body), as the RTSP server
	// sends them: the kernel cuts across pieces.
	var heads [6][12]byte
	var bodies [6][]byte
	var want [][]byte
	var bt Batch
	for i, size := range []int{1000, 1000, 1000, 400, 1000, 1000} {
		for j := range heads[i] {
			heads[i][j] = byte(i)
		}
		bodies[i] = bytes.Repeat([]byte{byte(100 + i)}, size)
		iov := make([]unix.Iovec, 2)
		iov[0].Base, iov[1].Base = &heads[i][0], &bodies[i][0]
		iov[0].SetLen(12)
		iov[1].SetLen(size)
		bt.Add(&d, iov, true)
		want = append(want, append(heads[i][:], bodies[i]...))
	}
	if bt.Len() != 2 {
		t.Fatalf("%d messages, want 2 (4 datagrams, then 2)", bt.Len())
	}
	n, err := Send(raw, bt.Hdrs(), true)
	if err != nil || n != 2 {
		t.Fatalf("Send = %d, %v", n, err)
	}
	if err := peer.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for i, w := range want {
		m, err := peer.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:m], w) {
			t.Fatalf("datagram %d: %d bytes, want %d", i, m, len(w))
		}
	}

	// Without UDP checksums the kernel will not segment.
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Skipf("SO_NO_CHECK: %v %v", err, serr)
	}
	if _, err := Send(raw, bt.Hdrs(), true); !IsGSOError(err) {
		t.Fatalf("segmented send without checksums: %v, want an error IsGSOError knows", err)
	}
	if IsGSOError(errors.New("other")) || IsGSOError(unix.EAGAIN) {
		t.Error("IsGSOError takes any error")
	}
}

// agent.udpGSO: false turns segmentation off for sockets set up after.
func TestDisableGSO(t *testing.T) {
	_, _, raw := loopbackPair(t)
	if !GSO(raw) {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	t.Cleanup(func() { gsoOff.Store(false) })
	DisableGSO()
	if GSO(raw) {
		t.Fatal("GSO still reported after DisableGSO")
	}
}
