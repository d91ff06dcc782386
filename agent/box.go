package agent

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming/webrtc"
)

// boxMinInterval is the least time between two readings of the box's
// figures for the console: every open console polls, and the figures
// cost a few file reads (/proc, statfs, thermal zones).
const boxMinInterval = 2 * time.Second

// boxStatus gives the operator's console (the page at / of the WebRTC
// listener) the box's figures. It has its own hal.Machine, so the CPU
// share it shows covers the time between two console readings and does
// not shorten the interval of the health document's.
type boxStatus struct {
	a       *Agent
	machine *hal.Machine

	mu   sync.Mutex
	at   time.Time
	last webrtc.Box
}

func newBoxStatus(a *Agent) *boxStatus {
	return &boxStatus{a: a, machine: &hal.Machine{DataDir: a.dataDir}}
}

// get implements webrtc.Options.Box.
func (b *boxStatus) get(ctx context.Context) webrtc.Box {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.at.IsZero() && time.Since(b.at) < boxMinInterval {
		return b.last
	}
	a := b.a
	box := webrtc.Box{Version: Version, Uptime: time.Since(a.startedAt).Seconds()}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	m, _ := b.machine.Metrics(mctx) // partial figures on error
	cancel()
	if !b.at.IsZero() { // the first reading's CPU share is since boot
		cpu := m.CPUPercent
		box.CPUPercent = &cpu
	}
	box.MemTotal, box.MemAvailable = m.MemTotalBytes, m.MemTotalBytes-m.MemUsedBytes
	box.DiskFree, box.DiskTotal = m.DiskFreeBytes, m.DiskTotalBytes
	box.TemperatureC = m.TemperatureC
	if broker := string(a.cfg.Uplink.Broker); broker != "" {
		u := &webrtc.BoxUplink{Broker: redact.URL(broker)}
		if c := a.link.client; c != nil {
			st := c.Stats()
			u.Connected, u.LastSent = st.Connected, st.LastPublished
		}
		if st, err := a.store.OutboxStats(); err == nil {
			u.OutboxDepth, u.OutboxBytes = st.Depth, st.Bytes
		}
		box.Uplink = u
	}
	b.at, b.last = time.Now(), box
	return box
}

// port is the port number of a listen address such as ":8554" or
// "127.0.0.1:8554"; 0 when it has none.
func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
