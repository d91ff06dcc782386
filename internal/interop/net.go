package interop

import (
	"fmt"
	"net"
	"time"
)

// FreeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free tcp port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeUDPPair returns an even UDP port p on 127.0.0.1 such that p and p+1
// were both free a moment ago: an RTSP server's RTP and RTCP ports.
func FreeUDPPair() (int, error) {
	for range 200 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free udp pair: %w", err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p%2 == 1 {
			p--
		}
		if p < 1024 || p > 65534 {
			continue
		}
		a, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p, nil
	}
	return 0, fmt.Errorf("free udp pair: none found")
}

// WaitTCP polls addr until it accepts a TCP connection, the deadline passes,
// or stop is closed (a child that died: no point waiting).
func WaitTCP(addr string, timeout time.Duration, stop <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, timeout, err)
		}
		select {
		case <-stop:
			return fmt.Errorf("%s: process exited before listening", addr)
		case <-tick.C:
		}
	}
}
