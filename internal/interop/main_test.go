//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// workDir holds what the whole run shares: the agent binary and the clip.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camgate-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error

	clipOnce sync.Once
	clipPath string
	clipErr  error
)

// AgentBin builds the agent once per run, with -race so that a data race in
// the real process under real peers shows up in its log (checked at stop).
func AgentBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = BuildAgent(workDir, true) })
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Clip generates the shared H.264 clip once per run (see ClipArgs).
func Clip(t testing.TB) string {
	t.Helper()
	need(t, "ffmpeg")
	clipOnce.Do(func() { clipPath, clipErr = MakeClip(workDir) })
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	return clipPath
}

// need fails the test when a program is missing under CI (CI installs them
// all) and skips it elsewhere.
func need(t testing.TB, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (CI must install it): %v", p, err)
			}
			t.Skipf("%s not installed", p)
		}
	}
}

// outDir is where this test's process logs go: $INTEROP_OUT_DIR/<test>
// when set (kept as CI artifacts), else the test's temp dir.
func outDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("INTEROP_OUT_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startAgent starts camgate with o (Bin and Dir filled in when empty) and
// stops it at cleanup, asserting a graceful stop: SIGTERM honoured within
// 5 s (SPEC section 1), exit status 0, no data race reported.
func startAgent(t *testing.T, o AgentOptions) *Agent {
	t.Helper()
	if o.Bin == "" {
		o.Bin = AgentBin(t)
	}
	if o.Dir == "" {
		o.Dir = outDir(t)
	}
	a, err := StartAgent(o, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopAgent(t, a) })
	return a
}

func stopAgent(t *testing.T, a *Agent) {
	t.Helper()
	if ok, _ := a.Exited(); ok {
		return
	}
	took, killed := a.Stop(10 * time.Second)
	_, werr := a.Exited()
	switch {
	case killed:
		t.Errorf("agent pid %d ignored SIGTERM for %v: killed; last output:\n%s", a.PID(), took, a.Tail(30))
	case took > 5*time.Second:
		t.Errorf("agent took %v to stop on SIGTERM (SPEC: within 5 s)", took)
	case werr != nil:
		t.Errorf("agent exited with %v after SIGTERM; last output:\n%s", werr, a.Tail(30))
	}
	if strings.Contains(a.Output(), "WARNING: DATA RACE") {
		t.Errorf("agent reported a data race; see %s", a.LogPath)
	}
	if t.Failed() {
		t.Logf("agent log: %s", a.LogPath)
	}
}

// startCamera starts the GStreamer camera on port (0: any) serving the clip.
func startCamera(t *testing.T, dir string, port int) *Camera {
	t.Helper()
	need(t, Python())
	c, err := StartCamera(dir, Clip(t), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(5 * time.Second) })
	return c
}

// run runs a short-lived program with a deadline and returns stdout,
// stderr and its error. A program still running at the deadline is killed.
func run(timeout time.Duration, name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %v: %w", name, timeout, err)
	}
	return stdout.String(), stderr.String(), err
}

type probed struct {
	Codec  string
	Width  int
	Height int
}

// ffprobe reads url over RTSP/TCP and returns the first video stream.
func ffprobe(url string) (probed, error) {
	out, errOut, err := run(30*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height", "-of", "json", url)
	if err != nil {
		return probed{}, fmt.Errorf("ffprobe %s: %w: %s", url, err, errOut)
	}
	var doc struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return probed{}, fmt.Errorf("ffprobe %s: %w: %s", url, err, out)
	}
	if len(doc.Streams) == 0 {
		return probed{}, fmt.Errorf("ffprobe %s: no video stream: %s", url, out)
	}
	s := doc.Streams[0]
	return probed{Codec: s.CodecName, Width: s.Width, Height: s.Height}, nil
}

var frameRE = regexp.MustCompile(`(?m)^frame=(\d+)$`)

// decode has ffmpeg decode n video frames from url (transport tcp or udp)
// and returns how many frames it decoded and what it printed at level error.
func decode(url, transport string, n int, timeout time.Duration) (frames int, errOut string, err error) {
	out, errOut, err := run(timeout, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport,
		"-i", url, "-frames:v", strconv.Itoa(n), "-f", "null", "-", "-progress", "pipe:1")
	if m := frameRE.FindAllStringSubmatch(out, -1); len(m) > 0 {
		frames, _ = strconv.Atoi(m[len(m)-1][1])
	}
	return frames, strings.TrimSpace(errOut), err
}

// assertDecodes has ffmpeg decode n frames of url and fails on any decode
// error, a short count or a non-zero exit.
func assertDecodes(t *testing.T, url, transport string, n int) {
	t.Helper()
	frames, errOut, err := decode(url, transport, n, 60*time.Second)
	if err != nil {
		t.Fatalf("ffmpeg -rtsp_transport %s -i %s: %v (decoded %d frames)\nstderr:\n%s", transport, url, err, frames, errOut)
	}
	if errOut != "" {
		t.Errorf("ffmpeg -rtsp_transport %s -i %s: decode errors:\n%s", transport, url, errOut)
	}
	if frames < n {
		t.Errorf("ffmpeg -rtsp_transport %s -i %s: decoded %d frames, want %d", transport, url, frames, n)
	}
}

// assertProbe checks that url carries H.264 1280x720 (the clip).
func assertProbe(t *testing.T, url string, want probed) {
	t.Helper()
	got, err := ffprobe(url)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ffprobe %s = %+v, want %+v", url, got, want)
	}
}

// waitReadable polls url with ffprobe until it describes a stream or the
// deadline passes (a publisher that just started, a source reconnecting).
func waitReadable(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if _, err = ffprobe(url); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond) // polling an external program; no event to wait on
	}
	return errors.Join(fmt.Errorf("%s not readable within %v", url, timeout), err)
}
