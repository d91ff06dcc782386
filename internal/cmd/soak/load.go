package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// flap takes camera c away now and then (exponential gaps of mean
// -flap-every) for 1 s to -outage-max.
func (h *harness) flap(ctx context.Context, c *camera) {
	for sleep(ctx, h.randExp(h.o.flapEvery)) {
		h.camDown(c)
		h.c.flaps.Add(1)
		sleep(ctx, h.randDur(time.Second, h.o.outageMax))
		h.camUp(c)
	}
}

func (h *harness) camDown(c *camera) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up.Load() {
		c.Stop()
		c.up.Store(false)
	}
}

// camUp starts c again on its port (the port may linger for a moment).
func (h *harness) camUp(c *camera) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up.Load() {
		return
	}
	for i := 0; i < 50; i++ {
		if err := c.Start(); err == nil {
			c.up.Store(true)
			return
		} else if i == 49 {
			h.logf("%s: restart: %v", c.path, err)
		}
		time.Sleep(100 * time.Millisecond) // the port lingers: no event to wait on
	}
}

// reader is one reader slot: it reads a random camera path for 3 to 20 s
// over TCP or UDP, leaves, pauses a moment and comes back.
func (h *harness) reader(ctx context.Context, slot int) {
	for ctx.Err() == nil {
		c := h.cams[h.randInt(len(h.cams))]
		udp := h.randInt(2) == 1
		h.c.readersNow.Add(1)
		n, err := readFor(ctx, h.agent.URL(c.path, ""), udp, h.randDur(3*time.Second, 20*time.Second))
		h.c.readersNow.Add(-1)
		h.c.readerSessions.Add(1)
		h.c.readerPackets.Add(n)
		if err != nil && ctx.Err() == nil {
			// A camera that is away makes the path 404 or time out: expected.
			h.c.readerFailures.Add(1)
		}
		sleep(ctx, h.randDur(200*time.Millisecond, 2*time.Second))
	}
}

// readFor plays url for d (or until ctx ends) and returns the RTP packets
// received. A session that ends early by the server is an error.
func readFor(ctx context.Context, url string, udp bool, d time.Duration) (int64, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return 0, err
	}
	tr := gortsplib.TransportTCP
	if udp {
		tr = gortsplib.TransportUDP
	}
	c := &gortsplib.Client{
		Scheme: u.Scheme, Host: u.Host, Transport: &tr, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		// Loss over UDP while a camera flaps is expected: not logged.
		OnPacketsLost: func(uint64) {},
		OnDecodeError: func(error) {},
	}
	if err := c.Start2(); err != nil {
		return 0, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return 0, err
	}
	var n atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { n.Add(1) })
	if _, err := c.Play(nil); err != nil {
		return 0, err
	}
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case err := <-ended:
		return n.Load(), fmt.Errorf("session ended: %w", err)
	}
	c.Close()
	<-ended
	return n.Load(), nil
}

// dropper makes the broker drop the agent's connection (no DISCONNECT,
// as a crash or a cut link would) at exponential gaps of mean -drop-every.
func (h *harness) dropper(ctx context.Context) {
	for sleep(ctx, h.randExp(h.o.dropEvery)) {
		for id, cl := range h.broker.Clients.GetAll() {
			if id == fleetID || cl.Net.Inline || cl.Closed() {
				continue
			}
			cl.Stop(errors.New("soak: connection dropped"))
			h.c.drops.Add(1)
		}
	}
}

// commander sends a fleet command every -cmd-every, cycling through ping,
// status, paths.add, path.restart, paths.update and paths.remove (of a
// fleet path on one of the cameras). Each waits for its reply up to 10 s.
func (h *harness) commander(ctx context.Context) {
	tick := time.NewTicker(h.o.cmdEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cam := h.cams[i%len(h.cams)]
		fleetPath := fmt.Sprintf("soak-f%d", (i/6)%4)
		var name string
		var args any
		switch i % 6 {
		case 0:
			name = "ping"
		case 1:
			name = "status"
		case 2:
			name, args = "paths.add", map[string]any{"name": fleetPath, "conf": map[string]any{"source": cam.URL(), "sourceOnDemand": true}}
		case 3:
			name, args = "path.restart", map[string]any{"name": cam.path}
		case 4:
			name, args = "paths.update", map[string]any{"name": fleetPath, "conf": map[string]any{"source": cam.URL(), "sourceOnDemand": true, "rtspTransport": "tcp"}}
		case 5:
			name, args = "paths.remove", map[string]any{"name": fleetPath}
		}
		var raw json.RawMessage
		if args != nil {
			raw, _ = json.Marshal(args)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := h.fleet.Command(cctx, agentID, name, raw)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return // the run ended while this one waited
		case err != nil:
			h.c.cmdUnanswered.Add(1)
		case r.OK:
			h.c.cmdOK.Add(1)
		default:
			h.c.cmdRefused.Add(1) // e.g. conflict after a drop replayed a command
		}
	}
}
