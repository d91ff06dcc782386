package record

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startPlayback serves h's recordings on 127.0.0.1 until the test ends.
func startPlayback(t testing.TB, h *harness, mod func(*PlaybackOptions)) string {
	t.Helper()
	return "http://" + runPlayback(t, h, mod).Addr().String()
}

// runPlayback runs a playback server of h's recorder on 127.0.0.1 until
// the test ends; Run must then return nil.
func runPlayback(t testing.TB, h *harness, mod func(*PlaybackOptions)) *Playback {
	t.Helper()
	o := PlaybackOptions{Address: "127.0.0.1:0", Recorder: h.rec}
	if mod != nil {
		mod(&o)
	}
	p, err := NewPlayback(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p
}

func getURL(base, name string, start time.Time, dur time.Duration) string {
	return base + "/get?" + url.Values{"path": {name}, "start": {start.Format(time.RFC3339Nano)},
		"duration": {strconv.FormatFloat(dur.Seconds(), 'f', -1, 64)}}.Encode()
}

// download fetches u into a file.
func download(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET %s: %s %s: %s", u, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	file := filepath.Join(t.TempDir(), "get.mp4")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// decodeClean decodes every frame of file with ffmpeg and fails on any
// error it reports.
func decodeClean(t *testing.T, file string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", file, "-f", "null", "-").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", file, err, out)
	}
}

// probeDuration is the container's duration and each stream's, in seconds.
func probeDuration(t *testing.T, file string) (format float64, streams []float64) {
	t.Helper()
	out := ffprobe(t, "-v", "error", "-show_entries", "format=duration:stream=duration", "-of", "default=nw=1", file)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		if k == "duration" { // the streams' first, then the format's
			streams = append(streams, f)
		}
	}
	if len(streams) == 0 {
		t.Fatalf("ffprobe gave no duration for %s:\n%s", file, out)
	}
	format, streams = streams[len(streams)-1], streams[:len(streams)-1]
	return format, streams
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

// Real H.264 with G.711 audio recorded in 2 s segments: every segment
// decodes cleanly with the right duration, and a /get span across two
// boundaries is one file that decodes cleanly and lasts what was asked.
func TestSegmentsAndGetDecode(t *testing.T) {
	aus := realAUs(t)
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond}, nil)
	wall := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f := publish(t, h.m, "cam", aus, true, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(10 * 25)
	f.pub.Close()
	segs := h.closedSegments("cam")
	if len(segs) != 5 {
		dumpSegs(t, segs)
		t.Fatalf("%d segments, want 5", len(segs))
	}
	for _, s := range segs {
		decodeClean(t, s.file)
		format, streams := probeDuration(t, s.file)
		if !near(format, 2, 0.02) || len(streams) != 2 {
			t.Errorf("%s: duration %.3f (streams %v), want 2 s of video and audio", s.file, format, streams)
		}
	}

	base := startPlayback(t, h, nil)
	for _, c := range []struct {
		from, dur time.Duration
	}{
		{1500 * time.Millisecond, 3 * time.Second}, // across two boundaries, starting between keyframes
		{0, 10 * time.Second},                      // everything
		{8 * time.Second, 5 * time.Second},         // past the end: clipped to 2 s
	} {
		t.Run(fmt.Sprintf("from %s for %s", c.from, c.dur), func(t *testing.T) {
			file := download(t, getURL(base, "cam", wall.Add(c.from), c.dur))
			decodeClean(t, file)
			want := min(c.dur, 10*time.Second-c.from).Seconds()
			format, streams := probeDuration(t, file)
			t.Logf("%s: %.3f s, streams %v", file, format, streams)
			if os.Getenv("RECORD_KEEP") != "" {
				_ = exec.Command("cp", file, os.Getenv("RECORD_KEEP")+"/"+strings.ReplaceAll(t.Name(), "/", "_")+".mp4").Run()
			}
			if !near(format, want, 0.02) {
				t.Errorf("duration %.3f, want %.3f", format, want)
			}
			for _, s := range streams {
				if !near(s, want, 0.03) {
					t.Errorf("a stream lasts %.3f, want %.3f", s, want)
				}
			}
		})
	}
}
