//go:build interop

package interop

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recSpan is one entry of GET /list.
type recSpan struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration"`
	URL      string    `json:"url"`
}

func listRecorded(base, path string) []recSpan {
	resp, err := http.Get(base + "/list?path=" + url.QueryEscape(path))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []recSpan
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out
}

// waitRecorded polls GET /list until path has one span of at least d.
func waitRecorded(t *testing.T, base, path string, d, timeout time.Duration, a *Agent) recSpan {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := listRecorded(base, path); len(s) == 1 && s[0].Duration >= d.Seconds() {
			return s[0]
		} else if len(s) > 1 {
			t.Fatalf("the recording is cut into %d spans: %+v", len(s), s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span of %s recorded within %s; agent:\n%s", d, timeout, a.Tail(30))
		}
		time.Sleep(500 * time.Millisecond) // polling another process
	}
}

// getURL is the /get request of a range.
func getURL(base, path string, start time.Time, d time.Duration) string {
	return base + "/get?" + url.Values{"path": {path}, "start": {start.UTC().Format(time.RFC3339Nano)},
		"duration": {strconv.FormatFloat(d.Seconds(), 'f', -1, 64)}}.Encode()
}

func fetchTo(t *testing.T, u, file string) time.Duration {
	t.Helper()
	began := time.Now()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(began)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET %s: %s %v: %.200s", u, resp.Status, err, b)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return took
}

// decodeClean decodes every frame of file with ffmpeg; any error it
// reports fails the test.
func decodeClean(t *testing.T, file string) {
	t.Helper()
	out, errOut, err := run(2*time.Minute, "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", file, "-f", "null", "-")
	if err != nil || strings.TrimSpace(out+errOut) != "" {
		t.Fatalf("ffmpeg decoding %s: %v\n%s%s", file, err, out, errOut)
	}
}

// probe returns the container's duration and the video frames ffprobe
// counts.
func probe(t *testing.T, file string) (float64, int) {
	t.Helper()
	out, errOut, err := run(2*time.Minute, "ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "format=duration:stream=nb_read_frames", "-of", "default=nw=1", file)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, errOut)
	}
	var dur float64
	var frames int
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "duration="); ok {
			dur, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, "nb_read_frames="); ok {
			frames, _ = strconv.Atoi(v)
		}
	}
	return dur, frames
}

// segmentStart reads the start of a segment from its name (the default
// recordPath: %Y-%m-%d_%H-%M-%S-%f, UTC).
func segmentStart(t *testing.T, file string) time.Time {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(file), ".mp4")
	i := strings.LastIndex(name, "-")
	at, err := time.Parse("2006-01-02_15-04-05", name[:i])
	us, uerr := strconv.Atoi(name[i+1:])
	if err != nil || uerr != nil {
		t.Fatalf("segment name %s: %v %v", name, err, uerr)
	}
	return at.Add(time.Duration(us) * time.Microsecond)
}

// A real camera (GStreamer passing the 2 Mbit/s clip through) recorded for
// a minute in 10 s segments with nobody reading it: every segment decodes
// cleanly and lasts 10 s, and a /get across a boundary is one file that
// decodes cleanly and lasts what was asked.
func TestRecordCamera(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	port, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	a := startAgent(t, AgentOptions{
		Dir:      dir,
		LogLevel: "info",
		Paths: map[string]map[string]any{"cam": {
			"source": cam.URL, "rtspTransport": "tcp",
			"record": true, "recordSegmentDuration": "10s", "recordPartDuration": "1s",
		}},
		Sections: map[string]map[string]any{"playback": {"address": "127.0.0.1:" + strconv.Itoa(port)}},
	})
	sp := waitRecorded(t, base, "cam", 61*time.Second, 2*time.Minute, a)

	files, _ := filepath.Glob(filepath.Join(a.Opts.DataDir, "recordings", "cam", "*.mp4"))
	sort.Strings(files)
	if len(files) < 7 {
		t.Fatalf("%d segments after %.1f s of recording: %v", len(files), sp.Duration, files)
	}
	boundary := segmentStart(t, files[2])
	got := filepath.Join(dir, "get-across.mp4")
	took := fetchTo(t, getURL(base, "cam", boundary.Add(-3500*time.Millisecond), 8*time.Second), got)
	decodeClean(t, got)
	if d, frames := probe(t, got); d < 7.98 || d > 8.02 || frames < 200 {
		t.Errorf("/get of 8 s across %s: %.3f s, %d frames", boundary.Format(time.TimeOnly), d, frames)
	} else {
		t.Logf("/get of 8 s across a boundary: %.3f s, %d frames, answered in %s", d, frames, took.Round(time.Millisecond))
	}

	stopAgent(t, a)
	files, _ = filepath.Glob(filepath.Join(a.Opts.DataDir, "recordings", "cam", "*.mp4"))
	sort.Strings(files)
	var total float64
	for i, f := range files {
		decodeClean(t, f)
		d, frames := probe(t, f)
		total += d
		if i < len(files)-1 && (d < 10 || d > 10.05 || frames != 250) {
			t.Errorf("segment %s: %.3f s, %d frames; want 10 s, 250 frames", filepath.Base(f), d, frames)
		}
		if i > 0 {
			prev, _ := probe(t, files[i-1])
			if gap := segmentStart(t, f).Sub(segmentStart(t, files[i-1])).Seconds() - prev; gap > 0.002 || gap < -0.002 {
				t.Errorf("segment %s starts %.3f s after the previous one ends", filepath.Base(f), gap)
			}
		}
	}
	t.Logf("%d segments, %.1f s recorded in all", len(files), total)
}

// Debian's chromium plays a /get answer spanning two segments in a
// <video> to its end, with the right duration; and the player page's
// timeline, clicked, plays the recording.
func TestBrowserPlaysRecording(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	need(t, "node", "chromium", "ffmpeg")
	root, _ := ModuleRoot()
	if _, err := os.Stat(filepath.Join(root, "internal", "interop", "browser", "node_modules", "playwright-core")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("playwright-core not installed: run internal/interop/browser/setup.sh")
		}
		t.Skip("playwright-core not installed: run internal/interop/browser/setup.sh")
	}
	dir := outDir(t)
	cam, err := StartCamera(dir, os.Getenv(envClip), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Stop(5 * time.Second) })
	var ports [3]int
	for i := range ports {
		if ports[i], err = FreeTCPPort(); err != nil {
			t.Fatal(err)
		}
	}
	icePort, err := FreeUDPPair()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, AgentOptions{
		Bin: os.Getenv(envAgentBin), Dir: dir, LogLevel: "info",
		Paths: map[string]map[string]any{"cam": {
			"source": cam.URL, "record": true, "recordSegmentDuration": "4s", "recordPartDuration": "500ms",
		}},
		Sections: map[string]map[string]any{
			"playback": {"address": "127.0.0.1:" + strconv.Itoa(ports[0])},
			"webrtc": {
				"address":           "127.0.0.1:" + strconv.Itoa(ports[1]),
				"iceUDPMuxAddress":  "127.0.0.1:" + strconv.Itoa(icePort),
				"ipsFromInterfaces": false,
				"additionalHosts":   []string{"127.0.0.1"},
			},
		},
	})
	base := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	sp := waitRecorded(t, base, "cam", 10*time.Second, time.Minute, a)

	t.Run("video element", func(t *testing.T) {
		// 6 s from 1 s into the recording: across the boundary at 4 s.
		var r struct {
			Error  string `json:"error"`
			Loaded struct {
				Duration   float64 `json:"duration"`
				VideoWidth int     `json:"videoWidth"`
			} `json:"loaded"`
			End struct {
				CurrentTime float64 `json:"currentTime"`
				Frames      int     `json:"frames"`
				Ended       bool    `json:"ended"`
			} `json:"end"`
			Last any      `json:"last"`
			Logs []string `json:"logs"`
		}
		recordingNode(t, &r, "media", getURL(base, "cam", sp.Start.Add(time.Second), 6*time.Second))
		if r.Error != "" {
			t.Fatalf("%s; last %v\n%s\nagent:\n%s", r.Error, r.Last, strings.Join(r.Logs, "\n"), a.Tail(20))
		}
		if r.Loaded.VideoWidth != 1280 || r.Loaded.Duration < 5.98 || r.Loaded.Duration > 6.02 || !r.End.Ended || r.End.CurrentTime < 5.9 || r.End.Frames < 140 {
			t.Fatalf("played %+v to %+v; want 6 s of 1280-wide video to the end", r.Loaded, r.End)
		}
		t.Logf("chromium played %.3f s (%d frames) of a /get across a segment boundary", r.End.CurrentTime, r.End.Frames)
	})

	t.Run("timeline", func(t *testing.T) {
		var r struct {
			Error    string         `json:"error"`
			Playing  map[string]any `json:"playing"`
			Playback struct {
				Dur float64 `json:"dur"` // ms
			} `json:"playback"`
			Last any      `json:"last"`
			Logs []string `json:"logs"`
		}
		recordingNode(t, &r, "timeline", "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/cam")
		if r.Error != "" {
			t.Fatalf("%s; last %v\n%s", r.Error, r.Last, strings.Join(r.Logs, "\n"))
		}
		if d, _ := r.Playing["duration"].(float64); d < r.Playback.Dur/1000-0.05 || d > r.Playback.Dur/1000+0.05 {
			t.Errorf("the video lasts %.3f s; the timeline asked for %.3f s", d, r.Playback.Dur/1000)
		}
		t.Logf("timeline click played %v", r.Playing)
	})
}

// recordingNode runs browser_recording.mjs and decodes its JSON line.
func recordingNode(t *testing.T, v any, args ...string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "internal", "interop", "browser", "browser_recording.mjs")
	out, errOut, err := run(3*time.Minute, "node", append([]string{script}, args...)...)
	line := strings.TrimSpace(out)
	if i := strings.LastIndex(line, "\n"); i >= 0 {
		line = line[i+1:]
	}
	if jerr := json.Unmarshal([]byte(line), v); jerr != nil {
		t.Fatalf("node %v: %v (%v)\nstdout:\n%s\nstderr:\n%s", args, err, jerr, out, errOut)
	}
}
