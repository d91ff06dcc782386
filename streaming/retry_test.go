package streaming

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
)

// eventLog keeps every event and lets a test wait for one.
type eventLog struct {
	mu  sync.Mutex
	all []Event
	ch  chan Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 1024)} }

func (e *eventLog) Event(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

func (e *eventLog) count(typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

func (e *eventLog) wait(t *testing.T, typ, path string, timeout time.Duration) {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case ev := <-e.ch:
			if ev.Type == typ && ev.Path == path {
				return
			}
		case <-tm.C:
			t.Fatalf("no %s for %s within %s", typ, path, timeout)
		}
	}
}

func runManager(t *testing.T, opts ManagerOptions, entries map[string]PathConfig) *Manager {
	t.Helper()
	m, err := NewManager(opts, entries)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// refusingCamera is a port that accepts connections and closes them after
// the first request: a camera whose RTSP service is not up (yet). It
// records when full attempts (connections that sent something) arrived;
// probes connect and close without sending.
type refusingCamera struct {
	ln       net.Listener
	mu       sync.Mutex
	attempts []time.Time
	wg       sync.WaitGroup
}

func newRefusingCamera(t *testing.T) *refusingCamera {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &refusingCamera{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, _ := c.Read(make([]byte, 512)); n > 0 {
					r.mu.Lock()
					r.attempts = append(r.attempts, time.Now())
					r.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(r.close)
	return r
}

func (r *refusingCamera) close() { r.ln.Close(); r.wg.Wait() }

func (r *refusingCamera) url() string { return "rtsp://" + r.ln.Addr().String() + "/stream" }

func (r *refusingCamera) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.attempts...)
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a figure that has no event
	}
}

// TestCameraBackIsProbedNotWaitedFor: the backoff step is long (RetryMin
// 10 s: the first wait alone is at least 5 s), but the camera's port is
// probed in between, so a camera that comes back after a second plays
// again long before the step is over: an always-on path, and an on-demand
// path whose reader waits (it gets the stream, not a start timeout).
func TestCameraBackIsProbedNotWaitedFor(t *testing.T) {
	for _, onDemand := range []bool{false, true} {
		name := map[bool]string{false: "always-on", true: "on-demand"}[onDemand]
		t.Run(name, func(t *testing.T) {
			cam := testcam.New(t)
			ev := newEventLog()
			m := runManager(t, ManagerOptions{Log: zerolog.Nop(), Events: ev, RetryMin: 10 * time.Second, ProbeInterval: 100 * time.Millisecond},
				map[string]PathConfig{"cam": {Source: cam.URL(), SourceOnDemand: onDemand, StartTimeout: 20 * time.Second, RetryMax: 30 * time.Second}})

			cam.Stop()
			var lease chan *Lease
			if onDemand {
				// The reader asks while the camera is down: the first
				// attempt fails, the reader keeps waiting.
				lease = make(chan *Lease, 1)
				go func() {
					l, err := m.Acquire(context.Background(), "cam", ReaderRequest{})
					if err != nil {
						t.Errorf("reader waiting for the camera: %v", err)
					}
					lease <- l
				}()
			}
			ev.wait(t, "path.error", "cam", 5*time.Second)
			time.Sleep(time.Second) // the camera stays away for a while
			if err := cam.Start(); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			ev.wait(t, "path.ready", "cam", 10*time.Second)
			// Liveness bound: well under the 5 s the step alone would take.
			if d := time.Since(back); d > 4*time.Second {
				t.Fatalf("ready %s after the camera came back", d)
			}
			if onDemand {
				if l := <-lease; l != nil {
					l.Release()
				}
			}
			if inf, _ := m.Path("cam"); inf.State != StateReady {
				t.Fatalf("state %s", inf.State)
			}
		})
	}
}

// TestRetryStepCappedBySourceRetryMax: a camera whose port stays open while
// its RTSP service fails (a camera booting) for longer than the old 1-30 s
// backoff would need to reach a multi-second step; once it serves again the
// path is ready within a bound derived from RetryMax.
func TestRetryStepCappedBySourceRetryMax(t *testing.T) {
	const retryMax = 300 * time.Millisecond
	cam := testcam.New(t)
	ev := newEventLog()
	m := runManager(t, ManagerOptions{Log: zerolog.Nop(), Events: ev, RetryMin: 20 * time.Millisecond},
		map[string]PathConfig{"cam": {Source: cam.URL(), SourceOnDemand: false, RetryMax: retryMax}})
	ev.wait(t, "path.ready", "cam", 5*time.Second)

	// Same port, RTSP failing: the probe sees an open port all along, so
	// only the step decides.
	cam.Stop()
	booting := listenUntilFree(t, cam.Addr())
	ev.wait(t, "path.error", "cam", 5*time.Second)
	time.Sleep(3 * time.Second) // 20 ms doubling uncapped would be at a 2.5-5 s step by now
	booting.Close()
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	ev.wait(t, "path.ready", "cam", 10*time.Second)
	if d, bound := time.Since(back), 3*retryMax+2*time.Second; d > bound {
		t.Fatalf("ready %s after the camera came back, bound %s", d, bound)
	}
	if inf, _ := m.Path("cam"); inf.Reconnects < 5 {
		t.Fatalf("only %d reconnect attempts during the outage", inf.Reconnects)
	}
}

// listenUntilFree listens on addr (just released by a stopped camera) and
// closes every connection after its first request.
func listenUntilFree(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	waitUntil(t, "listen on "+addr, 5*time.Second, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = c.Read(make([]byte, 512))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

// TestRetryLogIsQuiet: a camera that keeps failing is retried many times,
// but logged once as a warning (then at debug level) and raised once as
// path.error.
func TestRetryLogIsQuiet(t *testing.T) {
	cam := newRefusingCamera(t)
	ev := newEventLog()
	logs := &testlog.Buffer{}
	runManager(t, ManagerOptions{Log: zerolog.New(logs).Level(zerolog.DebugLevel), Events: ev, RetryMin: 20 * time.Millisecond},
		map[string]PathConfig{"cam": {Source: cam.url(), SourceOnDemand: false, RetryMax: 100 * time.Millisecond}})
	waitUntil(t, "ten attempts", 10*time.Second, func() bool { return len(cam.times()) >= 10 })

	warns := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"warn"`) {
			warns++
		}
	}
	if warns != 1 || !strings.Contains(logs.String(), "source failed, retrying") {
		t.Fatalf("%d warnings for %d attempts, want 1:\n%s", warns, len(cam.times()), logs.String())
	}
	if n := ev.count("path.error"); n != 1 {
		t.Fatalf("%d path.error events for %d attempts, want 1", n, len(cam.times()))
	}
}

// TestRetryJitterSpreadsPaths: twenty paths that fail at the same moment
// do not keep retrying in step. With the same step for all and no jitter
// every wave of attempts would land within a few milliseconds.
func TestRetryJitterSpreadsPaths(t *testing.T) {
	const paths = 20
	cam := newRefusingCamera(t)
	entries := map[string]PathConfig{}
	for i := range paths {
		entries["cam"+string(rune('a'+i))] = PathConfig{Source: cam.url(), SourceOnDemand: false, RetryMax: 200 * time.Millisecond}
	}
	start := time.Now()
	runManager(t, ManagerOptions{Log: zerolog.Nop(), RetryMin: 200 * time.Millisecond}, entries)
	waitUntil(t, "six waves of attempts", 20*time.Second, func() bool { return len(cam.times()) >= 6*paths })

	// Leave out the first wave (all paths start together) and count the
	// 10 ms slots the later attempts fall into.
	slots := map[int64]bool{}
	later := 0
	for _, at := range cam.times() {
		if d := at.Sub(start); d > 90*time.Millisecond {
			later++
			slots[int64(d/(10*time.Millisecond))] = true
		}
	}
	// Without jitter the attempts of a wave share one or two slots (about
	// later/10 in all); jittered they spread over most of them. A loaded
	// machine wakes timers in bunches, hence the wide margin. The spread
	// itself is tested in internal/backoff.
	if len(slots) < later/7 {
		t.Fatalf("%d attempts in %d slots of 10 ms: retries in step", later, len(slots))
	}
}
