package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/shirou/gopsutil/v4/process"

	"github.com/camgate/camgate/internal/interop"
)

// startMosquitto writes a config and starts mosquitto on 127.0.0.1 only:
// no persistence (the benchmark starts from nothing), no connection cap,
// $SYS every second for the byte counters, queues deep enough for
// sessions of agents that restart during a rollout. Its open-file limit is
// the one fleetsim raised (the child inherits it).
func startMosquitto(dir, bin string) (*interop.Proc, string, error) {
	port, err := interop.FreeTCPPort()
	if err != nil {
		return nil, "", err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_queued_messages 10000
max_inflight_messages 64
sys_interval 1
connection_messages false
log_type error
log_type warning
`, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, "", err
	}
	p, err := interop.StartProc(dir, "mosquitto", bin, "-c", conf)
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := interop.WaitTCP(addr, 10*time.Second, p.Done()); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("mosquitto: %w\n%s", err, p.Tail(20))
	}
	return p, "tcp://" + addr, nil
}

// sysMonitor follows the broker's $SYS counters.
type sysMonitor struct {
	c paho.Client

	mu      sync.Mutex
	vals    map[string]float64
	changed chan struct{}
}

// The $SYS topics read (mosquitto names them so).
const (
	sysBytesReceived = "$SYS/broker/bytes/received"
	sysBytesSent     = "$SYS/broker/bytes/sent"
	sysMsgsReceived  = "$SYS/broker/messages/received"
	sysClients       = "$SYS/broker/clients/connected"
)

func newSysMonitor(broker string) (*sysMonitor, error) {
	m := &sysMonitor{vals: map[string]float64{}, changed: make(chan struct{})}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("fleetsim-sys").SetCleanSession(true).SetAutoReconnect(false)
	m.c = paho.NewClient(o)
	if tok := m.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("$SYS monitor: connect: %v", tok.Error())
	}
	filters := map[string]byte{sysBytesReceived: 0, sysBytesSent: 0, sysMsgsReceived: 0, sysClients: 0}
	tok := m.c.SubscribeMultiple(filters, func(_ paho.Client, msg paho.Message) {
		v, err := strconv.ParseFloat(string(msg.Payload()), 64)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.vals[msg.Topic()] = v
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("$SYS monitor: subscribe: %v", tok.Error())
	}
	return m, nil
}

func (m *sysMonitor) close() { m.c.Disconnect(250) }

// fresh waits for the next update of topic and returns its value.
func (m *sysMonitor) fresh(ctx context.Context, topic string) (float64, error) {
	m.mu.Lock()
	old, had := m.vals[topic]
	ch := m.changed
	m.mu.Unlock()
	for {
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Second):
			return 0, fmt.Errorf("no %s within 5s", topic)
		}
		m.mu.Lock()
		v, ok := m.vals[topic]
		ch = m.changed
		m.mu.Unlock()
		if ok && (!had || v != old) {
			return v, nil
		}
	}
}

// procSample is a process's CPU time and resident memory at one moment.
type procSample struct {
	at  time.Time
	cpu float64 // user+system seconds
	rss uint64
}

func sampleProc(pid int) (procSample, error) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return procSample{}, err
	}
	t, err := p.Times()
	if err != nil {
		return procSample{}, err
	}
	mi, err := p.MemoryInfo()
	if err != nil {
		return procSample{}, err
	}
	return procSample{at: time.Now(), cpu: t.User + t.System, rss: mi.RSS}, nil
}

// cpuPct is the CPU used between a and b, % of one core.
func cpuPct(a, b procSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return 100 * (b.cpu - a.cpu) / d
}

// peakTracker samples a process every second until stopped and keeps the
// highest RSS.
type peakTracker struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func trackPeak(pid int) *peakTracker {
	t := &peakTracker{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(t.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if s, err := sampleProc(pid); err == nil {
				t.peak = max(t.peak, s.rss)
			}
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

func (t *peakTracker) end() uint64 {
	close(t.stop)
	<-t.done
	return t.peak
}
