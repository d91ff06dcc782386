//go:build !linux

package webrtc

import (
	"net"
	"net/netip"
)

// batchConn is the ICE mux's UDP socket as it is: without sendmmsg(2),
// every datagram is a write of its own.
type batchConn struct {
	*net.UDPConn
}

func newBatchConn(c *net.UDPConn) (*batchConn, error) { return &batchConn{UDPConn: c}, nil }

// packetConn is the socket itself, so pion takes its own fast path.
func (c *batchConn) packetConn() net.PacketConn { return c.UDPConn }

// droppedCount is 0: without batches, pion sees every write's error.
func (c *batchConn) droppedCount() uint64 { return 0 }

func (c *batchConn) hold(netip.AddrPort)    {}
func (c *batchConn) release(netip.AddrPort) {}
func (c *batchConn) forget(netip.AddrPort)  {}
