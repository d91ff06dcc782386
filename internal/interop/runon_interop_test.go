//go:build interop

package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testcam"
)

// A MediaMTX-style runOnDemand: ffmpeg encodes a test source with libx264
// (where a Windows guide has -f dshow -i video="...") and publishes it to
// the path when the first reader asks. ffprobe and a Go RTSP client read
// it; after the last reader left, runOnDemandCloseAfter later, ffmpeg is
// gone.
func TestRunOnDemandFFmpegPublisher(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	if out, _, err := run(20*time.Second, "ffmpeg", "-hide_banner", "-encoders"); err != nil || !strings.Contains(out, "libx264") {
		t.Skip("ffmpeg without libx264")
	}
	cmd := "ffmpeg -nostdin -v error -re -f lavfi -i testsrc=size=640x360:rate=25 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:$RTSP_PORT/$MTX_PATH"
	a := startAgent(t, AgentOptions{Paths: map[string]map[string]any{
		"webcam": {"source": "publisher", "runOnDemand": cmd, "runOnDemandCloseAfter": "1s", "runOnDemandStartTimeout": "20s"},
	}})
	url := a.URL("webcam", "")
	if running(url) {
		t.Fatal("ffmpeg runs before anybody asked for the path")
	}
	assertProbe(t, url, probed{Codec: "h264", Width: 640, Height: 360})
	r, err := testcam.Read(t, url, false)
	if err != nil {
		t.Fatalf("Go RTSP client: %v", err)
	}
	r.WaitPackets(t, 50, 20*time.Second)
	if !running(url) {
		t.Fatal("no ffmpeg publishing to the path while it is read")
	}
	r.Close()
	deadline := time.Now().Add(15 * time.Second)
	for running(url) {
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg still runs 15 s after the last reader left; agent log:\n%s", a.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The agent logs the stop once the whole process group is gone, a
	// moment after ffmpeg itself.
	for !strings.Contains(a.Output(), "runOnDemand command stopped") {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not log the stop:\n%s", a.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running tells whether a live process (not a zombie) has url on its
// command line.
func running(url string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), url) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] != "Z" {
			return true
		}
	}
	return false
}
