//go:build !linux

package rtspserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"github.com/camgate/camgate/streaming"
)

// udpInline is off without sendmmsg(2): a UDP reader's goroutine sends a
// datagram per packet (writeUDPEach).
const udpInline = false

// udpDest is unused without sendmmsg.
type udpDest struct{}

func makeUDPDest(int, netip.AddrPort) udpDest { return udpDest{} }

func socketFamily(*net.UDPConn) int { return 0 }

// udpGSO: no segmentation offload without sendmmsg.
func udpGSO(syscall.RawConn) bool { return false }

// sendUDP sends ps a datagram each, waiting for the socket.
func (t *directOut) sendUDP(ps []*streaming.Packet, _ bool) (int, error) {
	return len(ps), t.writeUDPEach(ps)
}

// writeUDPEach sends ps a datagram each (without sendmmsg).
func (t *directOut) writeUDPEach(ps []*streaming.Packet) error {
	var buf [maxDatagram]byte
	var err error
	for i, p := range ps {
		w := p.Marshalled()
		if err == nil && len(w) >= 12 && len(w) <= len(buf) {
			n := copy(buf[:], w)
			binary.BigEndian.PutUint32(buf[8:], t.wire.ssrc[p.MediaIndex])
			if werr := t.udp.write(buf[:n], t.addrs[p.MediaIndex], t.timeout); werr != nil {
				t.st.CountDropped(1)
				if errors.Is(werr, net.ErrClosed) {
					err = werr
				}
			} else {
				t.count(ps[i : i+1])
			}
		} else {
			t.st.CountDropped(1)
		}
	}
	return err
}
