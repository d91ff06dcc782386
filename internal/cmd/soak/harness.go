package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	mauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/camgate/camgate/internal/interop"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/uplink/fleet"
)

const (
	agentID  = "cg-soak"
	fleetID  = "soak-fleet"
	finalFor = 60 * time.Second // each final check's deadline
	// reconnectFor bounds the wait for the uplink after the load: its
	// backoff reaches 60 s (and a jittered wait of up to that) when the
	// broker dropped it again and again.
	reconnectFor = 90 * time.Second
)

// harness owns everything the soak starts.
type harness struct {
	o   options
	dir string
	// dbFile is the agent's camgate.db, whose size is sampled.
	dbFile string

	rngMu sync.Mutex
	rng   *rand.Rand

	cams   []*camera
	broker *mqtt.Server
	agent  *interop.Agent
	api    string
	fleet  *fleet.Client

	loadStart time.Time // samples' time zero
	c         counters
}

// counters are the load's own figures, shown in every sample.
type counters struct {
	cmdOK, cmdRefused, cmdUnanswered atomic.Int64
	flaps, drops                     atomic.Int64
	readerSessions, readerFailures   atomic.Int64
	readersNow                       atomic.Int64
	readerPackets                    atomic.Int64
}

// camera is a simulated camera whose server can be stopped and started.
type camera struct {
	*testcam.Camera
	path string
	up   atomic.Bool
	mu   sync.Mutex // serialises Start and Stop
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// randDur is uniform in [lo, hi].
func (h *harness) randDur(lo, hi time.Duration) time.Duration {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(h.rng.Int63n(int64(hi-lo)+1))
}

// randExp is exponentially distributed with the given mean (Poisson
// arrivals), at least 100 ms.
func (h *harness) randExp(mean time.Duration) time.Duration {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return max(time.Duration(h.rng.ExpFloat64()*float64(mean)), 100*time.Millisecond)
}

func (h *harness) randInt(n int) int {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.Intn(n)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func run(ctx context.Context, o options) (err error) {
	h := &harness{o: o, rng: rand.New(rand.NewSource(o.seed))}
	if h.dir = o.out; h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "camgate-soak-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	h.logf("output in %s (seed %d)", h.dir, o.seed)
	defer h.stopAll()

	if err := h.start(); err != nil {
		return err
	}
	rep, err := h.soak(ctx)
	if err != nil {
		return err
	}
	md := rep.markdown()
	fmt.Println(md)
	if werr := os.WriteFile(filepath.Join(h.dir, "report.md"), []byte(md), 0o644); werr != nil {
		return werr
	}
	if failed := rep.failures(); len(failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %v (logs in %s)", len(failed), failed, h.dir)
	}
	if o.out == "" {
		os.RemoveAll(h.dir)
	}
	return nil
}

// start builds the agent and starts the cameras, the broker, the agent
// and the fleet client.
func (h *harness) start() error {
	bin := h.o.bin
	if bin == "" {
		h.logf("building camgate (stripped, CGO_ENABLED=0)")
		var err error
		if bin, err = interop.BuildAgent(h.dir, false); err != nil {
			return err
		}
	}
	for i := range h.o.cameras {
		c, err := testcam.Open(func(c *testcam.Camera) { c.FPS, c.GOP, c.FrameSize = 25, 50, 1000 })
		if err != nil {
			return fmt.Errorf("camera %d: %w", i, err)
		}
		cam := &camera{Camera: c, path: fmt.Sprintf("cam%d", i)}
		cam.up.Store(true)
		h.cams = append(h.cams, cam)
	}

	h.broker = mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := h.broker.AddHook(new(mauth.AllowHook), nil); err != nil {
		return err
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := h.broker.AddListener(tcp); err != nil {
		return err
	}
	if err := h.broker.Serve(); err != nil {
		return err
	}
	brokerURL := "tcp://" + tcp.Address()

	apiPort, err := interop.FreeTCPPort()
	if err != nil {
		return err
	}
	h.api = "http://127.0.0.1:" + strconv.Itoa(apiPort)
	paths := map[string]map[string]any{}
	for i, c := range h.cams {
		p := map[string]any{"source": c.URL(), "rtspTransport": "tcp", "sourceOnDemand": false}
		if i%2 == 1 {
			// The camera offers TCP only: automatic tries UDP, is refused
			// with 461 and goes on over TCP.
			p = map[string]any{"source": c.URL(), "rtspTransport": "automatic", "sourceOnDemand": true, "sourceOnDemandCloseAfter": "2s"}
		}
		paths[c.path] = p
	}
	h.agent, err = interop.StartAgent(interop.AgentOptions{
		Bin:      bin,
		Dir:      filepath.Join(h.dir, "agent"),
		LogLevel: "info",
		Paths:    paths,
		Sections: map[string]map[string]any{
			"agent":  {"id": agentID},
			"api":    {"address": "127.0.0.1:" + strconv.Itoa(apiPort)},
			"uplink": {"broker": brokerURL, "healthInterval": "10s"},
		},
	}, 30*time.Second)
	if err != nil {
		return err
	}
	h.dbFile = filepath.Join(h.dir, "agent", "data", "camgate.db")
	h.logf("agent pid %d, rtsp %s, api %s, broker %s", h.agent.PID(), h.agent.RTSPAddr, h.api, brokerURL)

	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h.fleet, err = fleet.Dial(dctx, fleet.Options{Broker: brokerURL, ClientID: fleetID}); err != nil {
		return err
	}
	return h.waitOnline(30 * time.Second)
}

// waitOnline waits for the agent's retained status to say online.
func (h *harness) waitOnline(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := h.fleet.Status(ctx, agentID)
		cancel()
		if err == nil && st.State == "online" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent not online on the broker within %v (last: %+v, %v)", d, st, err)
		}
		time.Sleep(200 * time.Millisecond) // polling a retained message: no event to wait on
	}
}

// stopAll stops the agent (SIGTERM, then SIGKILL), the fleet client, the
// broker and the cameras. Safe to call twice.
func (h *harness) stopAll() {
	if h.agent != nil && h.agent.Proc != nil {
		h.agent.Stop(10 * time.Second)
	}
	if h.fleet != nil {
		h.fleet.Close()
		h.fleet = nil
	}
	if h.broker != nil {
		_ = h.broker.Close()
		h.broker = nil
	}
	for _, c := range h.cams {
		c.Stop()
	}
}

// soak runs the load for the duration while sampling, then the final
// checks.
func (h *harness) soak(ctx context.Context) (*report, error) {
	h.loadStart = time.Now()
	rep := &report{o: h.o, start: h.loadStart, command: command(), machine: machine(), commit: gitCommit()}
	csv, err := newCSV(filepath.Join(h.dir, "samples.csv"))
	if err != nil {
		return nil, err
	}
	defer csv.close()

	loadCtx, stopLoad := context.WithTimeout(ctx, h.o.duration)
	defer stopLoad()
	agentDied := make(chan struct{})
	go func() {
		select {
		case <-h.agent.Done():
			close(agentDied)
			stopLoad()
		case <-loadCtx.Done():
		}
	}()

	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(loadCtx)
		}()
	}
	for _, c := range h.cams {
		spawn(func(ctx context.Context) { h.flap(ctx, c) })
	}
	for i := range h.o.readers {
		spawn(func(ctx context.Context) { h.reader(ctx, i) })
	}
	spawn(h.dropper)
	spawn(h.commander)

	// Sample at 0, interval, 2*interval, ... and once at the end.
	s, err := h.sample(nil)
	if err != nil {
		return nil, err
	}
	rep.samples = append(rep.samples, s)
	csv.write(s)
	tick := time.NewTicker(h.o.interval)
	for done := false; !done; {
		select {
		case <-tick.C:
		case <-loadCtx.Done():
			done = true
		}
		if ok, _ := h.agent.Exited(); ok {
			break
		}
		s, err := h.sample(&rep.samples[len(rep.samples)-1])
		if err != nil {
			h.logf("sample: %v", err)
			continue
		}
		rep.samples = append(rep.samples, s)
		csv.write(s)
		h.logf("%s", s)
	}
	tick.Stop()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	select {
	case <-agentDied:
		_, werr := h.agent.Exited()
		rep.check("agent alive for the whole run", false, fmt.Sprintf("exited after %v: %v; last output:\n%s",
			time.Since(rep.start).Round(time.Second), werr, h.agent.Tail(30)))
		return rep, nil
	default:
	}
	rep.loadTook = time.Since(rep.start)
	rep.check("agent alive for the whole run", true, fmt.Sprintf("pid %d", h.agent.PID()))
	rep.counters = h.snapshot()
	h.finalChecks(rep)
	rep.judge()
	return rep, nil
}

type counterSnapshot struct {
	cmdOK, cmdRefused, cmdUnanswered int64
	flaps, drops                     int64
	readerSessions, readerFailures   int64
	readerPackets                    int64
}

func (h *harness) snapshot() counterSnapshot {
	return counterSnapshot{
		cmdOK: h.c.cmdOK.Load(), cmdRefused: h.c.cmdRefused.Load(), cmdUnanswered: h.c.cmdUnanswered.Load(),
		flaps: h.c.flaps.Load(), drops: h.c.drops.Load(),
		readerSessions: h.c.readerSessions.Load(), readerFailures: h.c.readerFailures.Load(),
		readerPackets: h.c.readerPackets.Load(),
	}
}

// finalChecks: with the load stopped and every camera back, the uplink
// reconnects, the agent answers a ping, every camera path plays for a new
// reader, the outbox drains, and SIGTERM stops the agent cleanly.
func (h *harness) finalChecks(rep *report) {
	for _, c := range h.cams {
		h.camUp(c)
	}
	// The uplink backs off up to a minute after connections that did not
	// last (uplink.Client): wait for it before asking anything.
	start := time.Now()
	connected := false
	for !connected && time.Since(start) < reconnectFor {
		if m, err := scrape(h.api); err == nil && m["camgate_uplink_connected"] == 1 {
			connected = true
			break
		}
		time.Sleep(500 * time.Millisecond) // polling /metrics: no event to wait on
	}
	rep.check("uplink connected again", connected, fmt.Sprintf("%v after the load", time.Since(start).Round(100*time.Millisecond)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	r, err := h.fleet.Command(ctx, agentID, "ping", nil)
	cancel()
	detail := "answered"
	if err != nil {
		detail = err.Error()
	} else if !r.OK {
		detail = fmt.Sprintf("error reply %+v", r.Error)
	}
	rep.check("ping answered after the load", err == nil && r.OK, detail)

	// Every camera path at once, each with its own deadline.
	type played struct {
		n    int64
		took time.Duration
		err  error
	}
	res := make([]played, len(h.cams))
	var wg sync.WaitGroup
	for i, c := range h.cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				n, err := readFor(ctx, h.agent.URL(c.path, ""), false, 2*time.Second)
				cancel()
				res[i] = played{n: n, took: time.Since(start), err: err}
				if (err == nil && n > 0) || time.Since(start) > finalFor {
					return
				}
				time.Sleep(time.Second) // the source is reconnecting: retry the read
			}
		}()
	}
	wg.Wait()
	for i, c := range h.cams {
		p := res[i]
		detail := fmt.Sprintf("%d packets in 2 s; read done %v after the load", p.n, p.took.Round(100*time.Millisecond))
		if p.err != nil {
			detail += ": " + p.err.Error()
		}
		rep.check(c.path+" plays again", p.err == nil && p.n > 0, detail)
	}

	start = time.Now()
	depth := -1.0
	for time.Since(start) < finalFor {
		if m, err := scrape(h.api); err == nil {
			if depth = m["camgate_outbox_depth"]; depth == 0 {
				break
			}
		}
		time.Sleep(500 * time.Millisecond) // polling /metrics: no event to wait on
	}
	rep.check("outbox drained", depth == 0, fmt.Sprintf("depth %v, %v after the load", depth, time.Since(start).Round(100*time.Millisecond)))

	took, killed := h.agent.Stop(10 * time.Second)
	_, werr := h.agent.Exited()
	detail = fmt.Sprintf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if killed || werr != nil {
		detail += fmt.Sprintf(" (killed %v, %v)", killed, werr)
	}
	rep.check("clean stop on SIGTERM", !killed && werr == nil, detail)
}

var errNoAgent = errors.New("agent gone")
