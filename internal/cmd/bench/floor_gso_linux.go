//go:build linux

package main

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/internal/mmsg"
)

// floorGSO returns the floor's UDP sender with segmentation offload: per
// socket, one sendmmsg of the access unit's runs of equal packets as
// segmented messages, the cheapest way Linux has to send them, and what
// camgate does for its UDP and WebRTC readers. nil when the kernel has no
// UDP segmentation offload.
func floorGSO(uc *net.UDPConn, dsts []*net.UDPAddr) func(pkts [][]byte) {
	raw, err := uc.SyscallConn()
	if err != nil || !mmsg.GSO(raw) {
		return nil
	}
	ds := make([]mmsg.Dest, len(dsts))
	for i, d := range dsts {
		ds[i] = mmsg.MakeDest(unix.AF_INET, d.AddrPort())
	}
	var b mmsg.Batch
	var iov [1]unix.Iovec
	return func(pkts [][]byte) {
		for i := range ds {
			b.Reset()
			for _, p := range pkts {
				if len(p) == 0 {
					continue
				}
				iov[0].Base = &p[0]
				iov[0].SetLen(len(p))
				b.Add(&ds[i], iov[:], true)
			}
			for hs := b.Hdrs(); len(hs) > 0; {
				k, err := mmsg.Send(raw, hs, true)
				if err != nil {
					break
				}
				hs = hs[k:]
			}
		}
		b.Reset()
	}
}
