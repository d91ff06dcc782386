//go:build linux

package rtspserver

import (
	"testing"

	"golang.org/x/sys/unix"
)

// An access unit's fragments, all of one size, go to a UDP reader as
// segmented messages where the kernel has UDP segmentation offload; the
// reader still gets each packet whole and in order.
func TestUDPReaderSegmented(t *testing.T) {
	fx := newDirectFixture(t)
	if !fx.udp.udp.gso {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	checkUDPDatagrams(t, fx)
	if fx.udp.dests[0].PlainOnly() {
		t.Error("a segmented message to the reader failed on loopback")
	}
}

// A reader whose route refuses segmented messages gets the same packets
// as plain datagrams, none lost. The kernel refuses segmentation to a
// socket that sends without UDP checksums (SO_NO_CHECK), as it does for
// a device that cannot compute them.
func TestUDPReaderFallsBackToPlainDatagrams(t *testing.T) {
	fx := newDirectFixture(t)
	if !fx.udp.udp.gso {
		t.Skip("this kernel has no UDP segmentation offload")
	}
	var serr error
	if err := fx.udp.udp.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
	}); err != nil || serr != nil {
		t.Skipf("SO_NO_CHECK: %v %v", err, serr)
	}
	checkUDPDatagrams(t, fx)
	if !fx.udp.dests[0].PlainOnly() {
		t.Error("the reader was never refused a segmented message: SO_NO_CHECK did not take")
	}
	if info, _ := fx.m.Path("cam"); info.Dropped != 0 {
		t.Errorf("%d packets dropped", info.Dropped)
	}
}
