package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	"github.com/camgate/camgate/internal/interop"
)

// The floor is the least a relay can spend on a TCP fan-out here: a
// process that pulls the same camera and writes each access unit, framed
// as RTSP interleaved packets, to N loopback TCP sockets with one write per
// access unit per socket, and does nothing else (no queues, no RTCP, no
// per-reader state). The bench runs it as a child (its own binary with
// floorEnv set) so its CPU is measured like the agent's; the reading ends
// of the sockets are in the bench process, as ffmpeg readers are outside
// the agent.

// floorEnv carries "CAMERA_URL SOCKETS DISCARD_ADDR" to the child.
const floorEnv = "CAMGATE_BENCH_FLOOR"

// runFloorChild is the child's main: it returns only on error or signal.
func runFloorChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("%s: want URL SOCKETS ADDR, got %q", floorEnv, spec)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 {
		return fmt.Errorf("%s: bad socket count %q", floorEnv, f[1])
	}
	conns := make([]net.Conn, n)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", f[2]); err != nil {
			return err
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
		for _, conn := range conns {
			_, _ = conn.Write(au)
		}
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

// floor runs the floor for n sockets against camURL over one window and
// returns what it measured.
func (b *bench) floor(ctx context.Context, camURL string, n int) (result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []net.Conn
	defer func() { // after the child has stopped (deferred later, run first)
		ln.Close()
		mu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	env := append(os.Environ(), fmt.Sprintf("%s=%s %d %s", floorEnv, camURL, n, ln.Addr()))
	p, err := interop.StartProcEnv(b.dir, fmt.Sprintf("floor%02d", n), env, self)
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
