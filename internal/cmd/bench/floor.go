package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"

	"github.com/camgate/camgate/internal/interop"
)

// The floor is the least a relay can spend on a TCP fan-out here: a
// process that pulls the same camera and writes each access unit, framed
// as RTSP interleaved packets, to N loopback TCP sockets with one write per
// access unit per socket, and does nothing else (no queues, no RTCP, no
// per-reader state). The bench runs it as a child (its own binary with
// floorEnv set) so its CPU is measured like the agent's; the reading ends
// of the sockets are sink processes, one per socket (sink.go), as each
// ffmpeg reader is a process of its own.

//
// Over UDP the floor sends every packet of an access unit as a datagram
// of its own from one socket to each of N loopback UDP sockets, one
// sendmmsg(2) per access unit per socket, as camgate does for its UDP
// readers: with UDP segmentation offload where the kernel has it (runs of
// equal packets as one segmented message each, floor_gso_linux.go), else
// a message per datagram (x/net's WriteBatch).

// floorEnv carries "CAMERA_URL SOCKETS ADDR [tcp|udp]" to the child: ADDR
// is the TCP listener to connect to, or the UDP sockets' addresses,
// separated by commas.
const floorEnv = "CAMGATE_BENCH_FLOOR"

// runFloorChild is the child's main: it returns only on error or signal.
func runFloorChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) == 3 {
		f = append(f, "tcp")
	}
	if len(f) != 4 || (f[3] != "tcp" && f[3] != "udp") {
		return fmt.Errorf("%s: want URL SOCKETS ADDR tcp|udp, got %q", floorEnv, spec)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 {
		return fmt.Errorf("%s: bad socket count %q", floorEnv, f[1])
	}
	var conns []net.Conn
	var send func(au []byte, pkts [][]byte)
	if f[3] == "udp" {
		if send, err = floorUDP(f[2], n); err != nil {
			return err
		}
	} else {
		conns = make([]net.Conn, n)
		for i := range conns {
			if conns[i], err = net.Dial("tcp", f[2]); err != nil {
				return err
			}
		}
		send = func(au []byte, _ [][]byte) {
			for _, conn := range conns {
				_, _ = conn.Write(au)
			}
		}
	}
	u, err := base.ParseURL(f[0])
	if err != nil {
		return err
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		return err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return err
	}
	var au []byte
	var pkts [][]byte // the datagrams of the access unit, in au (after each 4-byte frame header)
	c.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		ch := 0
		for i, m := range desc.Medias {
			if m == medi {
				ch = 2 * i
			}
		}
		size := pkt.MarshalSize()
		au = slices.Grow(au, 4+size)
		au = append(au, '$', byte(ch), byte(size>>8), byte(size))
		if _, err := pkt.MarshalTo(au[len(au) : len(au)+size]); err != nil {
			au = au[:len(au)-4]
			return
		}
		au = au[:len(au)+size]
		if !pkt.Marker {
			return
		}
		pkts = pkts[:0]
		for i := 0; i+4 <= len(au); {
			sz := int(au[i+2])<<8 | int(au[i+3])
			pkts = append(pkts, au[i+4:i+4+sz])
			i += 4 + sz
		}
		send(au, pkts)
		au = au[:0]
	})
	if _, err := c.Play(nil); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-sig:
		return nil
	case err := <-done:
		return err
	}
}

// floorUDP returns the floor's UDP sender to the comma-separated addrs.
func floorUDP(addrs string, n int) (func(au []byte, pkts [][]byte), error) {
	var dsts []*net.UDPAddr
	for _, a := range strings.Split(addrs, ",") {
		ua, err := net.ResolveUDPAddr("udp4", a)
		if err != nil {
			return nil, err
		}
		dsts = append(dsts, ua)
	}
	if len(dsts) != n {
		return nil, fmt.Errorf("%s: %d sockets but %d addresses", floorEnv, n, len(dsts))
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if send := floorGSO(uc, dsts); send != nil {
		return func(_ []byte, pkts [][]byte) { send(pkts) }, nil
	}
	pc := ipv4.NewPacketConn(uc)
	var all []ipv4.Message // reused, with a one-buffer slice each
	return func(_ []byte, pkts [][]byte) {
		for len(all) < len(pkts) {
			all = append(all, ipv4.Message{Buffers: make([][]byte, 1)})
		}
		for _, dst := range dsts {
			msgs := all[:len(pkts)]
			for i, p := range pkts {
				msgs[i].Buffers[0], msgs[i].Addr = p, dst
			}
			for len(msgs) > 0 {
				k, err := pc.WriteBatch(msgs, 0)
				if err != nil {
					break
				}
				msgs = msgs[k:]
			}
		}
	}, nil
}

// floorMode is the floor over tcp or udp.
func (b *bench) floorMode(ctx context.Context, camURL string, n int, mode string) (result, error) {
	if mode == "tcp" {
		return b.floor(ctx, camURL, n)
	}
	var addrs []string
	var sk sinks
	defer sk.stop()
	for range n {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return result{}, err
		}
		addrs = append(addrs, s.LocalAddr().String())
		if err := sk.start(s); err != nil {
			return result{}, err
		}
	}
	return b.runFloor(ctx, fmt.Sprintf("%s %d %s udp", camURL, n, strings.Join(addrs, ",")), fmt.Sprintf("floor-udp%02d", n), n)
}

// floor runs the floor for n sockets against camURL over one window and
// returns what it measured.
func (b *bench) floor(ctx context.Context, camURL string, n int) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	var wg sync.WaitGroup
	var sk sinks
	defer func() { // after the child has stopped (deferred later, run first)
		ln.Close()
		wg.Wait()
		sk.stop()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if err := sk.start(c); err != nil {
				b.logf("floor: %v", err)
			}
		}
	}()
	return b.runFloor(ctx, fmt.Sprintf("%s %d %s tcp", camURL, n, ln.Addr()), fmt.Sprintf("floor%02d", n), n)
}

// runFloor runs the floor child with spec over one window.
func (b *bench) runFloor(ctx context.Context, spec, label string, n int) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	env := append(os.Environ(), floorEnv+"="+spec)
	p, err := interop.StartProcEnv(b.dir, label, env, self)
	if err != nil {
		return result{}, err
	}
	b.track(p)
	defer p.Stop(5 * time.Second)
	if err := sleep(ctx, b.o.warmup); err != nil {
		return result{}, err
	}
	if exited, err := p.Exited(); exited {
		return result{}, errors.Join(fmt.Errorf("floor with %d sockets ended: %s", n, p.Tail(5)), err)
	}
	return sample(ctx, p.PID(), b.o.window, nil)
}
