//go:build interop

package interop

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An always-on path survives its camera dying: the camera is SIGKILLed
// mid-stream and started again on the same port; the agent reconnects by
// itself and readers get frames again.
func TestAlwaysOnCameraRestart(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	a := startAgent(t, AgentOptions{Dir: dir, Paths: map[string]map[string]any{
		"cam": {"source": cam.URL, "sourceOnDemand": false, "rtspTransport": "tcp", "readTimeout": "3s"},
	}})
	url := a.URL("cam", "")
	if err := waitReadable(url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	assertDecodes(t, url, "tcp", 25)

	// A reader that stays through the outage (SPEC section 3: readers stay
	// connected where the tracks did not change).
	survivor, err := StartProc(dir, "ffmpeg-survivor", "ffmpeg", "-nostdin", "-v", "error",
		"-rtsp_transport", "tcp", "-i", url, "-f", "null", "-", "-progress", "pipe:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { survivor.Stop(5 * time.Second) })
	if err := survivor.WaitOutput("frame=", 20*time.Second); err != nil {
		t.Fatal(err)
	}

	cam.Kill()
	// The stream really stopped: a new reader gets at most the cached
	// keyframe group (instant start, 50 frames here), no fresh frames.
	if frames, _, _ := decode(url, "tcp", 75, 6*time.Second); frames >= 75 {
		t.Fatalf("decoded %d frames in 6 s with the camera killed", frames)
	}
	before := lastFrame(survivor.Output())

	cam2, err := StartCamera(dir, Clip(t), cam.Port)
	if err != nil {
		t.Fatalf("restart camera on port %d: %v", cam.Port, err)
	}
	t.Cleanup(func() { cam2.Stop(5 * time.Second) })

	deadline := time.Now().Add(45 * time.Second)
	var frames int
	var errOut string
	for time.Now().Before(deadline) {
		frames, errOut, err = decode(url, "tcp", 25, 15*time.Second)
		if err == nil && frames >= 25 {
			break
		}
		time.Sleep(500 * time.Millisecond) // polling external processes until the agent reconnects
	}
	if frames < 25 {
		t.Fatalf("no frames through the agent within 45 s of the camera restart (last: %d frames, %v, %s)\nagent log tail:\n%s",
			frames, err, errOut, a.Tail(30))
	}

	t.Run("reader kept through the outage", func(t *testing.T) {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if lastFrame(survivor.Output()) > before+25 {
				return
			}
			if ok, werr := survivor.Exited(); ok {
				t.Fatalf("reader connected before the outage was dropped (%v) at frame %d:\n%s", werr, before, survivor.Tail(10))
			}
			time.Sleep(250 * time.Millisecond) // polling an external program's progress output
		}
		t.Errorf("reader connected before the outage got no new frames after the reconnect (stuck at %d)", lastFrame(survivor.Output()))
	})
}

func lastFrame(progress string) int {
	m := frameRE.FindAllStringSubmatch(progress, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// SIGKILL leaves the bbolt file behind with its lock released; the agent
// starts again on it and serves streams.
func TestAgentRestartAfterSIGKILL(t *testing.T) {
	need(t, "ffmpeg")
	apiPort, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	api := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	a := startAgent(t, AgentOptions{Sections: map[string]map[string]any{"api": {"address": "127.0.0.1:" + strconv.Itoa(apiPort)}}})
	assertDecodes(t, a.URL("demo", ""), "tcp", 25)
	if n, err := metric(api, "camgate_boot_count"); err != nil || n != 1 {
		t.Errorf("boot count on a fresh dataDir: %v, %v; want 1", n, err)
	}
	db := filepath.Join(a.Opts.DataDir, "camgate.db")
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("no state file after start: %v", err)
	}
	a.Kill()
	if err := a.Restart(30 * time.Second); err != nil {
		t.Fatalf("restart after SIGKILL: %v", err)
	}
	assertDecodes(t, a.URL("demo", ""), "tcp", 25)
	// The state file was reopened, not recreated: its boot count went on.
	if n, err := metric(api, "camgate_boot_count"); err != nil || n != 2 {
		t.Errorf("boot count after SIGKILL and restart: %v, %v; want 2", n, err)
	}
	if ok, err := a.Exited(); ok {
		t.Fatalf("restarted agent exited: %v\n%s", err, a.Tail(20))
	}
	st, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("%s mode %o, want 600 (SPEC section 9)", db, mode)
	}
}

// A second agent on the same dataDir fails fast with a clear message
// instead of hanging on the bbolt lock (SPEC section 9).
func TestSecondInstanceFailsFast(t *testing.T) {
	a := startAgent(t, AgentOptions{})
	o := a.Opts // same DataDir, own ports and config file
	o.Dir = filepath.Join(o.Dir, "second")
	o.RTSPPort, o.RTPPort = 0, 0
	cfg, err := WriteAgentConfig(&o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProc(o.Dir, "camgate-second", o.Bin, "run", "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Wait(15 * time.Second); err == nil {
		t.Fatalf("second instance on the same dataDir exited 0:\n%s", p.Tail(10))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("second instance took %v to give up", took)
	}
	t.Logf("second instance said: %s", p.Tail(3))
}

// One reader stops reading (ffmpeg frozen with SIGSTOP, its TCP window
// closes): once its queue is full the agent drops its packets (counted in
// /metrics) and another reader of the same camera keeps getting 25 fps
// (SPEC section 3, fan-out).
func TestStalledReaderDoesNotSlowOthers(t *testing.T) {
	need(t, "ffmpeg")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	apiPort, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	api := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	a := startAgent(t, AgentOptions{
		Dir:      dir,
		Paths:    map[string]map[string]any{"cam": {"source": cam.URL}},
		Sections: map[string]map[string]any{"rtsp": {"writeQueueSize": 64}, "api": {"address": "127.0.0.1:" + strconv.Itoa(apiPort)}},
	})
	reader := func(label string) *Proc {
		p, err := StartProc(dir, label, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
			"-i", a.URL("cam", ""), "-c", "copy", "-f", "null", "-", "-progress", "pipe:1", "-stats_period", "0.5")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Signal(syscall.SIGCONT)
			p.Stop(5 * time.Second)
		})
		if err := p.WaitOutput("frame=", 20*time.Second); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fast := reader("ffmpeg-fast")
	stalled := reader("ffmpeg-stalled")
	if err := stalled.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Socket buffers on loopback hold several MB: poll /metrics until the
	// agent starts dropping for the stalled reader.
	deadline := time.Now().Add(60 * time.Second)
	var dropped float64
	for time.Now().Before(deadline) {
		if dropped, err = droppedPackets(api, "cam"); err == nil && dropped > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond) // polling the agent's metrics
	}
	if dropped <= 0 {
		t.Fatalf("no packets dropped for a reader stalled 60 s (last: %v, %v)", dropped, err)
	}

	// While the agent is dropping for the stalled reader, the other one
	// must get every frame.
	f0, t0 := lastFrame(fast.Output()), time.Now()
	time.Sleep(6 * time.Second) // a measuring window, not synchronisation
	f1, secs := lastFrame(fast.Output()), time.Since(t0).Seconds()
	if want := 25*secs - 25*0.5 - 1; float64(f1-f0) < want {
		t.Errorf("the other reader got %d frames in %.1f s with one reader stalled, want >= %.0f (25 fps)", f1-f0, secs, want)
	}
	if ok, err := fast.Exited(); ok {
		t.Errorf("the other reader exited: %v\n%s", err, fast.Tail(10))
	}
	t.Logf("dropped for the stalled reader: %v packets", dropped)
}

// droppedPackets reads camgate_path_packets_dropped_total for path.
func droppedPackets(api, path string) (float64, error) {
	return metric(api, `camgate_path_packets_dropped_total{path="`+path+`"}`)
}

// metric reads one series (name with its labels, as printed) from the
// agent's /metrics.
func metric(api, series string) (float64, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(api + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics (status %s)", series, resp.Status)
}

// A camera that goes silent without closing its connection (GStreamer
// frozen with SIGSTOP) is treated as lost after readTimeout and reconnected
// once it answers again; a reader connected throughout gets new frames
// (SPEC section 3).
func TestSilentCameraReconnects(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	t.Cleanup(func() { cam.Signal(syscall.SIGCONT) })
	readTimeout := 2 * time.Second
	a := startAgent(t, AgentOptions{Dir: dir, Paths: map[string]map[string]any{
		"cam": {"source": cam.URL, "sourceOnDemand": false, "rtspTransport": "tcp", "readTimeout": readTimeout.String()},
	}})
	url := a.URL("cam", "")
	if err := waitReadable(url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	survivor, err := StartProc(dir, "ffmpeg-survivor", "ffmpeg", "-nostdin", "-v", "error",
		"-rtsp_transport", "tcp", "-i", url, "-f", "null", "-", "-progress", "pipe:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { survivor.Stop(5 * time.Second) })
	if err := survivor.WaitOutput("frame=", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(cam.Output(), "CLIENT connected"); n != 1 {
		t.Fatalf("camera connections before the silence: %d, want 1", n)
	}

	if err := cam.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * readTimeout) // the silence under test
	before := lastFrame(survivor.Output())
	if err := cam.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// The agent gave up on the silent session and opened a new one.
	deadline := time.Now().Add(45 * time.Second)
	for strings.Count(cam.Output(), "CLIENT connected") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnection to the camera within 45 s after a %v silence (readTimeout %v); camera saw:\n%s\nagent log tail:\n%s",
				3*readTimeout, readTimeout, cam.Tail(10), a.Tail(20))
		}
		time.Sleep(250 * time.Millisecond) // polling an external program's output
	}
	if err := waitReadable(url, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	assertDecodes(t, url, "tcp", 25)

	t.Run("reader kept through the silence", func(t *testing.T) {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if lastFrame(survivor.Output()) > before+25 {
				return
			}
			if ok, werr := survivor.Exited(); ok {
				t.Fatalf("reader connected before the silence was dropped (%v) at frame %d:\n%s", werr, before, survivor.Tail(10))
			}
			time.Sleep(250 * time.Millisecond) // polling an external program's progress output
		}
		t.Errorf("reader connected before the silence got no new frames after the reconnect (stuck at %d)", lastFrame(survivor.Output()))
	})
}
