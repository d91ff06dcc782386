// Command bench is camgate's whole-process benchmark (`task bench`): it starts
// the agent, a GStreamer RTSP camera (testdata/camera) and N ffmpeg readers
// (and, for the WebRTC fan-out, N pion WHEP readers in this process) on
// 127.0.0.1, samples the agent's CPU (utime+stime from /proc/PID/stat) and
// RSS (/proc/PID/status) over a fixed window after a warm-up, measures the
// time to the first complete IDR access unit for a cold on-demand path and for
// a reader joining a running stream with a small gortsplib client, and prints
// a Markdown report. With -md FILE it also replaces the report between the
// bench markers in that file (BENCHMARKS.md).
//
// Loopback only, bounded by -timeout, and every process it started is stopped
// by PID on exit (including on SIGINT/SIGTERM).
//
// Quick run:
//
//	go run ./internal/cmd/bench -window 5s -warmup 2s -settle 5s -readers 1,5 -multi 0x0 -whep 1,5 -joins 3 -colds 1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/camgate/camgate/internal/interop"
)

type options struct {
	window       time.Duration
	warmup       time.Duration
	settle       time.Duration
	readers      []int
	idlePaths    int
	multiCams    int
	multiRdrs    int
	joins        int
	colds        int
	bin          string
	clip         string
	md           string
	plot         string
	out          string
	timeout      time.Duration
	logLevel     string
	pprof        string
	record       []int // cameras recorded at once, per recording scenario
	onlyRec      bool
	whep         []int // WebRTC reader counts, ascending
	only         string
	floor        bool
	peers        []peer // -peer: relays to run side by side with camgate
	rounds       int    // side-by-side rounds
	cmpTCP       []int  // side-by-side loads
	cmpUDP       []int
	cmpWHEP      []int
	curveReaders []int // cost curves: readers of one camera
	curveCams    []int // cost curves: cameras with a reader each
}

// peerFlags collects repeated -peer values.
type peerFlags []string

func (p *peerFlags) String() string     { return strings.Join(*p, " ") }
func (p *peerFlags) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	if spec := os.Getenv(swarmEnv); spec != "" {
		if err := runSwarmChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench swarm:", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv(sinkEnv) != "" {
		if err := runSinkChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench sink:", err)
			os.Exit(1)
		}
		return
	}
	if spec := os.Getenv(floorEnv); spec != "" {
		if err := runFloorChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench floor:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancelT := context.WithTimeout(ctx, o.timeout)
	b := &bench{o: o}
	err = b.run(ctx)
	cancelT()
	cancel()
	b.stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.DurationVar(&o.window, "window", 30*time.Second, "CPU/RSS sampling window per scenario")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "wait after a scenario starts before sampling")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "wait after the last reader leaves before the RSS-after-load sample")
	readers := fs.String("readers", "1,10,50", "reader counts for the 1-camera scenarios, ascending")
	fs.IntVar(&o.idlePaths, "idle-paths", 100, "configured idle on-demand paths for the idle-paths scenario (0: skip)")
	multi := fs.String("multi", "16x4", "CAMERASxREADERS for the many-cameras scenario (0x0: skip)")
	fs.IntVar(&o.joins, "joins", 10, "warm joins measured (first complete IDR for a new reader of a running stream)")
	fs.IntVar(&o.colds, "colds", 3, "cold on-demand starts measured")
	fs.StringVar(&o.bin, "bin", "", "camgate binary (default: build one like task build does)")
	fs.StringVar(&o.clip, "clip", "", "H.264 MP4 clip for the camera (default: generate with ffmpeg)")
	fs.StringVar(&o.md, "md", "", "Markdown file whose bench section (between the bench markers) is replaced by the report")
	fs.StringVar(&o.plot, "plot", "", "PNG file for the cost curves (when they run); the side-by-side section shows it, relative to -md")
	fs.StringVar(&o.out, "out", "", "directory for process logs (default: a temp dir, removed on success)")
	fs.DurationVar(&o.timeout, "timeout", time.Hour, "hard limit for the whole run (a side-by-side run of 3 rounds takes about 30 min)")
	fs.StringVar(&o.logLevel, "log-level", "info", "agent.logLevel during the run")
	fs.StringVar(&o.pprof, "pprof", "", "directory: turn agent.pprof on and save CPU and heap profiles taken after the largest 1-camera window")
	record := fs.String("record", "1,16", "cameras recorded at once, per recording scenario (\"\": skip); the 1-camera one also times playback")
	fs.BoolVar(&o.onlyRec, "record-only", false, "run the recording scenarios only (same as -only record)")
	fs.BoolVar(&o.floor, "floor", true, "after each TCP fan-out window, measure the floor: a bare process writing the same access units to as many sockets")
	fs.StringVar(&o.only, "only", "", "run one scenario only: idle, idle-paths, fanout, multi, whep, record, compare or curves (or compare,curves: both, into one side-by-side section)")
	whep := fs.String("whep", "1,10,50", "WebRTC reader counts for the WHEP fan-out scenario, ascending (\"\": skip)")
	var peers peerFlags
	fs.Var(&peers, "peer", "NAME=PATH: run the side-by-side scenario against this relay too (mediamtx or go2rtc; repeat for both); the harness writes its config, never fetches it")
	fs.IntVar(&o.rounds, "rounds", 3, "side-by-side rounds (each runs every load on every relay)")
	cmpTCP := fs.String("compare-tcp", "1,10,50", "side by side: RTSP readers over TCP, ascending")
	cmpUDP := fs.String("compare-udp", "10", "side by side: RTSP readers over UDP, ascending (relays without UDP are skipped)")
	cmpWHEP := fs.String("compare-whep", "1,10,25,50", "side by side: WebRTC readers, ascending")
	curveReaders := fs.String("curve-readers", "1,25,50,100,150,200", "cost curves: swarm readers of one camera, ascending (\"\": skip)")
	curveCams := fs.String("curve-cameras", "1,4,16,32,64", "cost curves: cameras with one swarm reader each, ascending (\"\": skip)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.readers, err = counts("-readers", *readers, true); err != nil {
		return o, err
	}
	if o.whep, err = counts("-whep", *whep, true); err != nil {
		return o, err
	}
	if o.record, err = counts("-record", *record, false); err != nil {
		return o, err
	}
	if o.cmpTCP, err = counts("-compare-tcp", *cmpTCP, true); err != nil {
		return o, err
	}
	if o.cmpUDP, err = counts("-compare-udp", *cmpUDP, true); err != nil {
		return o, err
	}
	if o.cmpWHEP, err = counts("-compare-whep", *cmpWHEP, true); err != nil {
		return o, err
	}
	if o.curveReaders, err = counts("-curve-readers", *curveReaders, true); err != nil {
		return o, err
	}
	if o.curveCams, err = counts("-curve-cameras", *curveCams, true); err != nil {
		return o, err
	}
	if o.peers, err = parsePeers(peers); err != nil {
		return o, err
	}
	if o.rounds < 1 {
		return o, errors.New("-rounds must be at least 1")
	}
	c, r, ok := strings.Cut(*multi, "x")
	var err1, err2 error
	o.multiCams, err1 = strconv.Atoi(c)
	o.multiRdrs, err2 = strconv.Atoi(r)
	if !ok || err1 != nil || err2 != nil || o.multiCams < 0 || o.multiRdrs < 0 {
		return o, fmt.Errorf("-multi: want CAMERASxREADERS, got %q", *multi)
	}
	if o.window <= 0 || o.warmup < 0 || o.settle < 0 {
		return o, errors.New("-window must be positive, -warmup and -settle not negative")
	}
	return o, nil
}

// counts parses a comma-separated list of positive counts ("" is none),
// ascending when asked.
func counts(flagName, v string, ascending bool) ([]int, error) {
	var out []int
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: bad count %q", flagName, s)
		}
		out = append(out, n)
	}
	if ascending && !slices.IsSorted(out) {
		return nil, fmt.Errorf("%s must be ascending", flagName)
	}
	return out, nil
}

type bench struct {
	o   options
	dir string
	// webrtcBase is the WHEP server of the agent started last.
	webrtcBase string
	mu         sync.Mutex
	procs      []*interop.Proc
	report     report
}

// track registers a process so that stopAll stops it whatever happens.
func (b *bench) track(p *interop.Proc) *interop.Proc {
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p
}

// stopAll stops every process still running, newest first, by PID.
func (b *bench) stopAll() {
	b.mu.Lock()
	procs := slices.Clone(b.procs)
	b.procs = nil
	b.mu.Unlock()
	slices.Reverse(procs)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(5 * time.Second)
		}()
	}
	wg.Wait()
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.o.out != "" {
		b.dir = b.o.out
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
	} else {
		if b.dir, err = os.MkdirTemp("", "camgate-bench-"); err != nil {
			return err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(b.dir)
			}
		}()
	}
	b.logf("logs in %s", b.dir)
	b.report.start = time.Now()
	b.report.command = benchCommand()
	b.report.machine = interop.Machine()
	b.report.commit = interop.GitCommit()

	if b.o.bin == "" {
		b.logf("building camgate (stripped, CGO_ENABLED=0)")
		if b.o.bin, err = interop.BuildAgent(b.dir, false); err != nil {
			return err
		}
	}
	if st, err := os.Stat(b.o.bin); err == nil {
		b.report.binarySize = st.Size()
	}
	if b.o.clip == "" {
		b.logf("generating the clip")
		if b.o.clip, err = interop.MakeClip(b.dir); err != nil {
			return err
		}
	}

	type step struct {
		key, name string
		fn        func(context.Context) error
	}
	steps := []step{
		{"idle", "idle, default config", b.idleDefault},
		{"idle-paths", "idle on-demand paths", b.idlePathsScenario},
		{"fanout", "1 camera", b.oneCamera},
		{"multi", "many cameras", b.manyCameras},
		{"whep", "WebRTC readers", b.webrtcReaders},
		{"record", "recording", b.recording},
		{"compare", "side by side", b.compare},
		{"curves", "cost curves", b.curves},
	}
	if len(b.o.peers) == 0 {
		// Side by side and the curves only when asked (-peer, or
		// -only): they run every load again per relay.
		steps = steps[:len(steps)-2]
		if sideBySideOnly(b.o.only) {
			steps = append(steps, step{"compare", "side by side", b.compare}, step{"curves", "cost curves", b.curves})
		}
	}
	if b.o.onlyRec {
		b.o.only = "record"
	}
	if b.o.only != "" {
		var picked []step
		for _, key := range strings.Split(b.o.only, ",") {
			i := slices.IndexFunc(steps, func(s step) bool { return s.key == key })
			if i < 0 {
				return fmt.Errorf("-only %q: no such scenario", key)
			}
			picked = append(picked, steps[i])
		}
		if len(picked) > 1 && !sideBySideOnly(b.o.only) {
			return fmt.Errorf("-only %q: only compare,curves go together", b.o.only)
		}
		steps = picked
	}
	for _, s := range steps {
		if err = ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %q: %w", s.name, err)
		}
		if err = s.fn(ctx); err != nil {
			if b.report.compare != nil || len(b.report.curves) > 0 {
				// What the side by side or the curves measured so far
				// is printed, not lost (nothing is written to -md).
				b.report.took = time.Since(b.report.start)
				fmt.Println(b.report.compareMarkdown(b.o))
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.stopAll()
	}
	b.report.took = time.Since(b.report.start)
	if !sideBySideOnly(b.o.only) {
		md := b.report.markdown(b.o)
		fmt.Println(md)
		switch {
		case b.o.md != "" && b.o.only != "":
			// One scenario's table would replace the whole run section.
			b.logf("-only %s: %s left as it is (the report is above)", b.o.only, b.o.md)
		case b.o.md != "":
			if err = replaceSection(b.o.md, beginMarker, endMarker, md); err != nil {
				return err
			}
			b.logf("wrote %s", b.o.md)
		}
	}
	if len(b.report.curves) > 0 && b.o.plot != "" {
		if err = writeCurvesPNG(b.o.plot, b.report.curves); err != nil {
			return err
		}
		b.logf("wrote %s", b.o.plot)
		b.report.plot = b.o.plot
		if b.o.md != "" {
			if rel, rerr := filepath.Rel(filepath.Dir(b.o.md), b.o.plot); rerr == nil {
				b.report.plot = filepath.ToSlash(rel)
			}
		}
	}
	if b.report.compare != nil || len(b.report.curves) > 0 {
		md := b.report.compareMarkdown(b.o)
		fmt.Println(md)
		if b.o.md != "" {
			if err = replaceSection(b.o.md, compareBegin, compareEnd, md); err != nil {
				return err
			}
			b.logf("wrote the side-by-side section of %s", b.o.md)
		}
	}
	return nil
}

// startAgent starts camgate with paths on free loopback ports; the API is
// on so /metrics can report dropped packets.
func (b *bench) startAgent(label string, paths map[string]map[string]any, sections ...map[string]map[string]any) (*interop.Agent, string, error) {
	apiPort, err := interop.FreeTCPPort()
	if err != nil {
		return nil, "", err
	}
	webrtcPort, err := interop.FreeTCPPort()
	if err != nil {
		return nil, "", err
	}
	iceUDP, err := interop.FreeUDPPair()
	if err != nil {
		return nil, "", err
	}
	hlsPort, err := interop.FreeTCPPort()
	if err != nil {
		return nil, "", err
	}
	o := interop.AgentOptions{
		Bin:      b.o.bin,
		Dir:      filepath.Join(b.dir, label),
		LogLevel: b.o.logLevel,
		Paths:    paths,
		Sections: map[string]map[string]any{
			"agent":  {"pprof": b.o.pprof != ""},
			"api":    {"address": "127.0.0.1:" + strconv.Itoa(apiPort)},
			"webrtc": {"address": "127.0.0.1:" + strconv.Itoa(webrtcPort), "iceUDPMuxAddress": "127.0.0.1:" + strconv.Itoa(iceUDP), "ipsFromInterfaces": false, "additionalHosts": []string{"127.0.0.1"}},
			"hls":    {"address": "127.0.0.1:" + strconv.Itoa(hlsPort)},
		},
	}
	for _, extra := range sections {
		for k, v := range extra {
			o.Sections[k] = v
		}
	}
	a, err := interop.StartAgent(o, 30*time.Second)
	if err != nil {
		return nil, "", err
	}
	b.track(a.Proc)
	b.webrtcBase = "http://127.0.0.1:" + strconv.Itoa(webrtcPort)
	return a, "http://127.0.0.1:" + strconv.Itoa(apiPort), nil
}

func (b *bench) startCamera(label string, paths ...string) (*interop.Camera, error) {
	var extra []string
	for _, p := range paths {
		extra = append(extra, "--path", p)
	}
	c, err := interop.StartCamera(filepath.Join(b.dir, label), b.o.clip, 0, extra...)
	if err != nil {
		return nil, err
	}
	b.track(c.Proc)
	return c, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bench) idleDefault(ctx context.Context) error {
	a, _, err := b.startAgent("idle", nil)
	if err != nil {
		return err
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return err
	}
	s, err := sample(ctx, a.PID(), b.o.window, nil)
	if err != nil {
		return err
	}
	b.report.idle = s
	b.logf("idle: %s", s)
	return nil
}

func (b *bench) idlePathsScenario(ctx context.Context) error {
	if b.o.idlePaths == 0 {
		return nil
	}
	paths := map[string]map[string]any{}
	for i := range b.o.idlePaths {
		// Nothing listens there: an on-demand path never starts its source.
		paths[fmt.Sprintf("idle%03d", i)] = map[string]any{"source": fmt.Sprintf("rtsp://127.0.0.1:9/cam%d", i)}
	}
	a, _, err := b.startAgent("idlepaths", paths)
	if err != nil {
		return err
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return err
	}
	s, err := sample(ctx, a.PID(), b.o.window, nil)
	if err != nil {
		return err
	}
	b.report.idlePaths = s
	b.logf("%d idle paths: %s", b.o.idlePaths, s)
	return nil
}

func (b *bench) oneCamera(ctx context.Context) error {
	cam, err := b.startCamera("camera")
	if err != nil {
		return err
	}
	// A second camera process only for cold starts: nobody else holds its
	// media, so reading it directly starts at its first IDR like the agent's
	// source does.
	cold, err := b.startCamera("camera-cold")
	if err != nil {
		return err
	}
	closeAfter := time.Second
	a, api, err := b.startAgent("onecam", map[string]map[string]any{
		"cam":     {"source": cam.URL, "rtspTransport": "tcp"},
		"coldcam": {"source": cold.URL, "rtspTransport": "tcp", "sourceOnDemandCloseAfter": closeAfter.String()},
	})
	if err != nil {
		return err
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return err
	}
	s, err := sample(ctx, a.PID(), b.o.window, nil)
	if err != nil {
		return err
	}
	b.report.idleBench = s

	// Cold on-demand: camera direct, then through the agent, alternately.
	for i := range b.o.colds {
		d, err := firstIDR(ctx, cold.URL)
		if err != nil {
			return fmt.Errorf("cold %d direct: %w", i, err)
		}
		b.report.coldDirect = append(b.report.coldDirect, d)
		// Let the camera unprepare its media so the next read is cold too.
		if err := sleep(ctx, 1500*time.Millisecond); err != nil {
			return err
		}
		v, err := firstIDR(ctx, a.URL("coldcam", ""))
		if err != nil {
			return fmt.Errorf("cold %d via agent: %w", i, err)
		}
		b.report.coldAgent = append(b.report.coldAgent, v)
		b.logf("cold on-demand %d: direct %v, via agent %v", i, d.Round(time.Millisecond), v.Round(time.Millisecond))
		if err := sleep(ctx, closeAfter+2*time.Second); err != nil {
			return err
		}
	}

	url := a.URL("cam", "")
	var rs []*reader
	for _, n := range b.o.readers {
		for len(rs) < n {
			r, err := b.startReader(url, fmt.Sprintf("reader%02d", len(rs)))
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
		if err := sleep(ctx, b.o.warmup); err != nil {
			return err
		}
		s, err := sample(ctx, a.PID(), b.o.window, rs)
		if err != nil {
			return err
		}
		s.dropped = scrapeDropped(api)
		fr := fanoutResult{readers: n, sample: s}
		b.logf("1 camera -> %d readers: %s", n, s)
		if b.o.floor {
			fl, err := b.floor(ctx, cam.URL, n)
			if err != nil {
				return err
			}
			fr.floor = &fl
			b.logf("floor, %d sockets: %s", n, fl)
		}
		b.report.fanout = append(b.report.fanout, fr)

		if b.o.pprof != "" && n == b.o.readers[len(b.o.readers)-1] {
			b.profile(ctx, api, a.Opts.Bin, a.PID(), fmt.Sprintf("%dreaders", n))
		}
		if len(b.report.warmAgent) == 0 && b.o.joins > 0 {
			if err := b.warmJoins(ctx, url, cam.URL); err != nil {
				return err
			}
		}
	}
	for _, r := range rs {
		r.Stop(5 * time.Second)
	}
	b.logf("all readers gone; waiting %v", b.o.settle)
	if err := sleep(ctx, b.o.settle); err != nil {
		return err
	}
	rss, err := readRSS(a.PID())
	if err != nil {
		return err
	}
	b.report.rssAfter = rss
	b.logf("RSS %v after the last reader left: %.1f MB", b.o.settle, mb(rss))
	return nil
}

// warmJoins measures a new reader's first complete IDR on the running
// stream, through the agent and, for reference, from the camera directly,
// at join times spread over the GOP.
func (b *bench) warmJoins(ctx context.Context, agentURL, camURL string) error {
	for i := range b.o.joins {
		v, err := firstIDR(ctx, agentURL)
		if err != nil {
			return fmt.Errorf("warm join %d via agent: %w", i, err)
		}
		b.report.warmAgent = append(b.report.warmAgent, v)
		d, err := firstIDR(ctx, camURL)
		if err != nil {
			return fmt.Errorf("warm join %d direct: %w", i, err)
		}
		b.report.warmDirect = append(b.report.warmDirect, d)
		// Spread the joins over the 2 s GOP: 0.37 s is prime to 2 s.
		if err := sleep(ctx, 370*time.Millisecond); err != nil {
			return err
		}
	}
	b.logf("warm joins: via agent median %v, direct median %v", median(b.report.warmAgent), median(b.report.warmDirect))
	return nil
}

func (b *bench) manyCameras(ctx context.Context) error {
	if b.o.multiCams == 0 || b.o.multiRdrs == 0 {
		return nil
	}
	var mounts []string
	for i := range b.o.multiCams {
		mounts = append(mounts, fmt.Sprintf("/cam%d", i))
	}
	cam, err := b.startCamera("cameras", mounts...)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(cam.URL, mounts[0])
	paths := map[string]map[string]any{}
	for i, m := range mounts {
		paths[fmt.Sprintf("m%d", i)] = map[string]any{"source": base + m, "rtspTransport": "tcp"}
	}
	a, api, err := b.startAgent("manycams", paths)
	if err != nil {
		return err
	}
	var rs []*reader
	for i := range mounts {
		for j := range b.o.multiRdrs {
			r, err := b.startReader(a.URL(fmt.Sprintf("m%d", i), ""), fmt.Sprintf("m%d-reader%d", i, j))
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
	}
	if err := sleep(ctx, b.o.warmup); err != nil {
		return err
	}
	s, err := sample(ctx, a.PID(), b.o.window, rs)
	if err != nil {
		return err
	}
	s.dropped = scrapeDropped(api)
	b.report.multi = &s
	b.logf("%d cameras x %d readers: %s", b.o.multiCams, b.o.multiRdrs, s)
	return nil
}

// profile saves a CPU profile (over min(window, 15 s), taken after the
// measured window so profiling does not count in it) and a heap profile, and
// logs the top of each. A missing endpoint is logged, not fatal. Where the
// resident memory goes is saved beside them: the kernel's view
// (smaps_rollup: anonymous against file-backed pages) and the Go runtime's
// (MemStats: heap, stacks, runtime overhead).
func (b *bench) profile(ctx context.Context, api, bin string, pid int, label string) {
	if err := os.MkdirAll(b.o.pprof, 0o755); err != nil {
		b.logf("pprof: %v", err)
		return
	}
	if smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		_ = os.WriteFile(filepath.Join(b.o.pprof, "smaps-"+label+".txt"), smaps, 0o644)
	}
	if err := fetch(ctx, api+"/debug/pprof/heap?debug=1", filepath.Join(b.o.pprof, "memstats-"+label+".txt"), 10*time.Second); err != nil {
		b.logf("pprof memstats: %v", err)
	}
	secs := int(min(b.o.window, 15*time.Second).Seconds())
	for _, p := range []struct{ name, url string }{
		{"cpu", fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", api, secs)},
		{"heap", api + "/debug/pprof/heap"},
	} {
		file := filepath.Join(b.o.pprof, fmt.Sprintf("%s-%s.pprof", p.name, label))
		if err := fetch(ctx, p.url, file, time.Duration(secs+15)*time.Second); err != nil {
			b.logf("pprof %s: %v", p.name, err)
			continue
		}
		top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", bin, file).CombinedOutput()
		if err != nil {
			b.logf("pprof %s saved to %s (go tool pprof: %v)", p.name, file, err)
			continue
		}
		b.logf("pprof %s saved to %s:\n%s", p.name, file, top)
	}
}

func fetch(ctx context.Context, url, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

// scrapeDropped sums camgate_path_packets_dropped_total over every path
// (packets lost by slow readers); -1 when the API does not answer.
func scrapeDropped(api string) float64 {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(api + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return -1
	}
	sum, seen := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		if name != "camgate_path_packets_dropped_total" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum, seen = sum+v, true
		}
	}
	if !seen {
		return -1
	}
	return sum
}

func benchCommand() string {
	args := os.Args[1:]
	return strings.TrimSpace("go run ./internal/cmd/bench " + strings.Join(args, " "))
}

// sideBySideOnly reports whether -only names the side by side, the curves
// or both, and nothing else.
func sideBySideOnly(only string) bool {
	if only == "" {
		return false
	}
	for _, key := range strings.Split(only, ",") {
		if key != "compare" && key != "curves" {
			return false
		}
	}
	return true
}
