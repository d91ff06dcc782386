package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-readers", "1, 5,20", "-multi", "2x3", "-window", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.readers) != 3 || o.readers[2] != 20 || o.multiCams != 2 || o.multiRdrs != 3 || o.window != 2*time.Second {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{
		{"-readers", "10,1"}, {"-readers", "0"}, {"-readers", "x"},
		{"-multi", "16"}, {"-multi", "ax4"}, {"-window", "0s"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	ticks, err := cpuTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU: utime+stime must not go backwards, and this
	// process has used some CPU by now (building the test binary's init).
	for i := 0; i < 1e7; i++ {
		_ = i * i
	}
	ticks2, err := cpuTicks(pid)
	if err != nil || ticks2 < ticks {
		t.Errorf("cpuTicks went from %d to %d (%v)", ticks, ticks2, err)
	}
	rss, err := readRSS(pid)
	if err != nil || rss < 1<<20 || rss > 1<<34 {
		t.Errorf("readRSS = %d, %v", rss, err)
	}
	if _, err := cpuTicks(-1); err == nil {
		t.Error("cpuTicks of no process succeeded")
	}
}

func TestMedianAndVerdict(t *testing.T) {
	ms := time.Millisecond
	if m := median([]time.Duration{5 * ms, 1 * ms, 3 * ms}); m != 3*ms {
		t.Errorf("odd median %v", m)
	}
	if m := median([]time.Duration{4 * ms, 1 * ms, 2 * ms, 3 * ms}); m != 2500*time.Microsecond {
		t.Errorf("even median %v", m)
	}
	if median[time.Duration](nil) != 0 {
		t.Error("median of nothing")
	}
	if v := verdict(14, 14, "MB"); v != "met" {
		t.Errorf("at the limit: %q", v)
	}
	if v := verdict(15, 14, "MB"); !strings.Contains(v, "missed") || !strings.Contains(v, "1.00 MB") {
		t.Errorf("just over: %q", v)
	}
	if v := verdict(26, 2.6, "%"); !strings.Contains(v, "10.0×") {
		t.Errorf("far over: %q", v)
	}
}

func TestReplaceSection(t *testing.T) {
	f := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(f, []byte("# head\n"+beginMarker+"\nold\n"+endMarker+"\ntail\n"), 0o644)
	if err := replaceSection(f, beginMarker, endMarker, "new table"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if got := string(b); got != "# head\n"+beginMarker+"\nnew table\n"+endMarker+"\ntail\n" {
		t.Errorf("got %q", got)
	}
	os.WriteFile(f, []byte("no markers"), 0o644)
	if err := replaceSection(f, beginMarker, endMarker, "x"); err == nil {
		t.Error("a file without markers was accepted")
	}
}

func TestReportMarkdown(t *testing.T) {
	o, _ := parseFlags(nil)
	r := report{
		start: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), machine: "m", commit: "abc",
		idle:      result{rssEnd: 10e6, rssPeak: 10e6},
		idleBench: result{rssEnd: 10e6},
		fanout:    []fanoutResult{{readers: 50, sample: result{cpuPct: 5.2, rssEnd: 30e6, readers: 50, keepingUp: 49, dropped: 3}}},
		rssAfter:  11e6,
		coldAgent: []time.Duration{30 * time.Millisecond}, coldDirect: []time.Duration{5 * time.Millisecond},
		warmAgent: []time.Duration{4 * time.Millisecond}, warmDirect: []time.Duration{time.Second},
	}
	md := r.markdown(o)
	for _, want := range []string{
		"### Run of 2026-01-02 03:04 UTC",
		"| 1 camera → 50 reader(s) | 5.20 % | 30.0 MB",
		"**readers fell behind**",
		"49/50",
		"within 20 % of idle | met",
		"≤ direct + 20 ms | **missed** by 5.00 ms",
		"< 150 ms | met",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestSwarmReaderCountsAccessUnits plays a simulated camera with the
// swarm's hand-written reader: it counts one access unit per frame.
func TestSwarmReaderCountsAccessUnits(t *testing.T) {
	cam := testcam.New(t, func(c *testcam.Camera) { c.FPS, c.GOP, c.FrameSize = 50, 10, 3000 })
	ctx, cancel := context.WithCancel(context.Background())
	var aus atomic.Int64
	done := make(chan error, 1)
	go func() { done <- swarmRead(ctx, net.IPv4(127, 0, 0, 2), cam.URL(), &aus) }()
	deadline := time.Now().Add(10 * time.Second)
	for aus.Load() < 50 && time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("reader ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if aus.Load() < 50 {
		t.Fatalf("%d access units in 10 s from a 50 fps camera", aus.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not stop with its context")
	}
}

func TestSwarmCounts(t *testing.T) {
	if got := swarmCounts("", 3); len(got) != 3 || got[0] != 0 {
		t.Fatalf("counts before a report: %v", got)
	}
	if got := swarmCounts("swarm 1 2 3\nswarm 4 5 6\nswarm 7 8", 3); got[0] != 4 || got[1] != 5 || got[2] != 6 {
		t.Fatalf("counts = %v, want the last complete line 4 5 6", got)
	}
}

func TestParsePeers(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mediamtx")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ps, err := parsePeers([]string{"mediamtx=" + bin})
	if err != nil || len(ps) != 1 || ps[0].name != "mediamtx" || ps[0].bin != bin {
		t.Fatalf("parsePeers = %v, %v", ps, err)
	}
	for _, bad := range []string{"mediamtx", "vlc=" + bin, "go2rtc=/nonexistent", "go2rtc=" + filepath.Dir(bin)} {
		if _, err := parsePeers([]string{bad}); err == nil {
			t.Errorf("parsePeers(%q) accepted", bad)
		}
	}
}

func TestSlope(t *testing.T) {
	if s := slope([]float64{1, 2, 3, 4}, []float64{3, 5, 7, 9}); s != 2 {
		t.Fatalf("slope = %v, want 2", s)
	}
	if s := slope([]float64{5}, []float64{1}); s != 0 {
		t.Fatalf("slope of one point = %v", s)
	}
}

func TestCompareMarkdown(t *testing.T) {
	l := cmpLoad{"tcp", 10}
	cr := &compareReport{relays: []string{"camgate", "go2rtc"}, versions: map[string]string{"go2rtc": "v"}, loads: []cmpLoad{l}, rounds: 3,
		got: map[cmpLoad]map[string][]cmpSample{l: {
			"camgate": {{result: result{cpuPct: 1, readers: 10, keepingUp: 10}}, {result: result{cpuPct: 3, readers: 10, keepingUp: 10}}, {result: result{cpuPct: 2, readers: 10, keepingUp: 10}}},
			"go2rtc":  {{result: result{cpuPct: 4, readers: 10, keepingUp: 9}}},
			"floor":   {{result: result{cpuPct: 1}}},
		}}}
	var sb strings.Builder
	cr.markdown(func(f string, a ...any) { fmt.Fprintf(&sb, f+"\n", a...) }, options{window: time.Second})
	md := sb.String()
	for _, want := range []string{"| 10 RTSP readers (TCP) | 2.00 % (1.00–3.00 %) | 4.00 % † | 1.00 % | 0.50× | 2.00× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("no %q in\n%s", want, md)
		}
	}
}

func TestCurvesPNG(t *testing.T) {
	pt := func(n int, cpu float64, rss uint64) curvePoint {
		return curvePoint{n: n, s: result{cpuPct: cpu, rssEnd: rss << 20}, keepingUp: n}
	}
	sets := []curveSet{
		{relay: "camgate", readers: []curvePoint{pt(1, 0.6, 18), pt(100, 3.6, 23), pt(200, 7, 31)}, cameras: []curvePoint{pt(1, 0.6, 18), pt(64, 12, 110)}},
		{relay: "mediamtx", readers: []curvePoint{pt(1, 1, 45), pt(200, 38, 67)}},
	}
	path := filepath.Join(t.TempDir(), "docs", "curves.png")
	if err := writeCurvesPNG(path, sets); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Fatalf("size %v", b)
	}
	// Each relay's line is drawn in its colour in the panels it has data
	// for: MediaMTX has no camera curve, so none of its colour below.
	count := func(c color.RGBA, r image.Rectangle) int {
		n := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if color.RGBAModel.Convert(img.At(x, y)) == c {
					n++
				}
			}
		}
		return n
	}
	top := image.Rect(0, 40, plotW, 40+panelH)
	bottom := image.Rect(0, 40+panelH, plotW, plotH)
	if n := count(relayColor("camgate"), top); n < 200 {
		t.Errorf("camgate: %d pixels in the reader panels", n)
	}
	if n := count(relayColor("camgate"), bottom); n < 200 {
		t.Errorf("camgate: %d pixels in the camera panels", n)
	}
	if n := count(relayColor("mediamtx"), top); n < 200 {
		t.Errorf("mediamtx: %d pixels in the reader panels", n)
	}
	if n := count(relayColor("mediamtx"), bottom); n != 0 {
		t.Errorf("mediamtx: %d pixels in the camera panels, where it has no data", n)
	}
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct{ max, top, step float64 }{
		{7, 8, 2}, {38, 40, 10}, {0.23, 0.25, 0.05}, {64, 80, 20}, {110, 200, 50}, {0, 1, 0.2}, {20, 20, 5}, {200, 200, 50},
	} {
		top, step := niceScale(tc.max)
		if math.Abs(top-tc.top) > 1e-9 || math.Abs(step-tc.step) > 1e-9 {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.max, top, step, tc.top, tc.step)
		}
	}
}

func TestSideBySideOnly(t *testing.T) {
	for only, want := range map[string]bool{"": false, "compare": true, "curves": true, "compare,curves": true, "compare,whep": false, "whep": false} {
		if got := sideBySideOnly(only); got != want {
			t.Errorf("sideBySideOnly(%q) = %v", only, got)
		}
	}
}

// TestMain lets the test binary be a sink child, as the bench binary is.
func TestMain(m *testing.M) {
	if os.Getenv(sinkEnv) != "" {
		if err := runSinkChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A sink process drains the socket it is handed, and only it holds that
// socket: once it is stopped, the writer sees the connection gone.
func TestSinkDrainsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var sk sinks
	defer sk.stop()
	if err := sk.start(r); err != nil {
		t.Fatal(err)
	}
	// Far more than the socket buffers hold: it goes through only if
	// the sink reads.
	buf := make([]byte, 1<<20)
	if err := w.SetWriteDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		if _, err := w.Write(buf); err != nil {
			t.Fatalf("write %d MiB: %v (is the sink reading?)", i, err)
		}
	}
	sk.stop()
	var werr error
	for i := 0; i < 64 && werr == nil; i++ {
		_, werr = w.Write(buf)
	}
	if werr == nil {
		t.Fatal("writes still go through after the sink was stopped")
	}
}

// The floor's UDP sender delivers every packet of an access unit to every
// socket as a datagram of its own, whole and in order (segmented or not).
func TestFloorUDPDelivers(t *testing.T) {
	var socks []*net.UDPConn
	var addrs []string
	for range 2 {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		socks = append(socks, s)
		addrs = append(addrs, s.LocalAddr().String())
	}
	send, err := floorUDP(strings.Join(addrs, ","), len(addrs))
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for i, size := range []int{1212, 1212, 1212, 400, 90} {
		pkts = append(pkts, bytes.Repeat([]byte{byte(i)}, size))
	}
	send(nil, pkts)
	buf := make([]byte, 64<<10)
	for i, s := range socks {
		if err := s.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		for j, want := range pkts {
			n, err := s.Read(buf)
			if err != nil {
				t.Fatalf("socket %d, datagram %d: %v", i, j, err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("socket %d, datagram %d: %d bytes of %d, want %d of %d", i, j, n, buf[0], len(want), want[0])
			}
		}
	}
}
