package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming/record"
	"github.com/camgate/camgate/uplink"
)

// fakeRecorder stands in for record.Recorder in the dispatcher.
type fakeRecorder struct {
	mu        sync.Mutex
	set       map[string]record.PathConfig
	removed   []string
	overrides map[string]bool
}

func (f *fakeRecorder) SetPath(name string, c record.PathConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[name] = c
	return nil
}

func (f *fakeRecorder) RemovePath(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, name)
}

func (f *fakeRecorder) SetRecording(name string, on bool) error {
	if name == "nowhere" {
		return record.ErrNotRecorded
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.overrides[name] = on
	return nil
}

func (f *fakeRecorder) Status(name string) (record.Status, bool) {
	if name != "cam1" {
		return record.Status{}, false
	}
	return record.Status{Name: "cam1", Record: true, State: "recording", Bytes: 42, Segments: 2}, true
}

func (f *fakeRecorder) Statuses() []record.Status {
	st, _ := f.Status("cam1")
	return []record.Status{st}
}

func (f *fakeRecorder) Spans(name string) ([]record.Span, error) {
	return []record.Span{{Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Duration: 90 * time.Second}}, nil
}

func recordDispatcher(t *testing.T) (*dispatcher, *fakeRecorder, *store.Store) {
	t.Helper()
	cfg, err := conf.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Paths["cam1"] = conf.PathConf{Source: "demo"}
	rec := &fakeRecorder{set: map[string]record.PathConfig{}, overrides: map[string]bool{}}
	st := storetest.New(t, store.Options{})
	d := newDispatcher(&dispatcher{log: zerolog.Nop(), store: st, paths: newFakePaths("demo", "cam1"), cfg: cfg, events: newEventSink(zerolog.Nop(), false)})
	d.rec = rec
	return d, rec, st
}

func call(t *testing.T, d *dispatcher, name, args string) (map[string]any, *uplink.Error) {
	t.Helper()
	res, werr := d.Call(context.Background(), name, json.RawMessage(args))
	if werr != nil {
		return nil, werr
	}
	var m map[string]any
	if err := json.Unmarshal(res, &m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

// path.record keeps the setting in a fleet path's stored conf, and only
// in the running recorder for a path of the config file; recordings.list
// reports the recorder's state and spans.
func TestRecordCommands(t *testing.T) {
	d, rec, st := recordDispatcher(t)
	if _, werr := call(t, d, "paths.add", `{"name":"cam9","conf":{"source":"demo","record":false,"recordMaxBytes":"2GiB"}}`); werr != nil {
		t.Fatal(werr)
	}
	if c := rec.set["cam9"]; c.Record || c.MaxBytes != 2<<30 || c.SegmentDuration != 10*time.Minute {
		t.Fatalf("recorder given %+v for cam9, want the conf over pathDefaults", c)
	}
	res, werr := call(t, d, "path.record", `{"name":"cam9","record":true}`)
	if werr != nil || res["persisted"] != true || res["record"] != true {
		t.Fatalf("path.record cam9: %v %v", res, werr)
	}
	if pc, err := st.FleetPath("cam9"); err != nil || pc.Record == nil || !*pc.Record {
		t.Fatalf("stored cam9: %+v %v", pc, err)
	}
	if !rec.set["cam9"].Record {
		t.Errorf("the recorder was not told cam9 records")
	}
	res, werr = call(t, d, "path.record", `{"name":"cam1","record":true}`)
	if werr != nil || res["persisted"] != false || !rec.overrides["cam1"] {
		t.Fatalf("path.record cam1 (config file): %v %v, overrides %v", res, werr, rec.overrides)
	}
	for args, code := range map[string]uplink.ErrorCode{
		`{"name":"nowhere","record":true}`: uplink.CodeNotFound,
		`{"name":"cam1"}`:                  uplink.CodeBadRequest,
		`{"name":"../x","record":true}`:    uplink.CodeBadRequest,
		`{"name":"cam1","record":"yes"}`:   uplink.CodeBadRequest,
	} {
		if _, werr := call(t, d, "path.record", args); werr == nil || werr.Code != code {
			t.Errorf("path.record %s: %v, want %s", args, werr, code)
		}
	}
	if _, werr := call(t, d, "paths.add", `{"name":"cam8","conf":{"source":"demo","recordPath":"/srv/%Y"}}`); werr == nil ||
		werr.Code != uplink.CodeBadRequest || !strings.Contains(werr.Message, "recordPath") {
		t.Errorf("a bad recordPath: %v", werr)
	}
	if _, werr := call(t, d, "paths.remove", `{"name":"cam9"}`); werr != nil || len(rec.removed) != 1 {
		t.Errorf("paths.remove: %v, recorder told %v", werr, rec.removed)
	}

	res, werr = call(t, d, "recordings.list", `{"name":"cam1"}`)
	if werr != nil {
		t.Fatal(werr)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"spans":[{"duration":90,"start":"2026-01-02T03:04:05Z"}]`) || !strings.Contains(string(b), `"state":"recording"`) {
		t.Errorf("recordings.list cam1: %s", b)
	}
	if _, werr := call(t, d, "recordings.list", `{"name":"cam2"}`); werr == nil || werr.Code != uplink.CodeNotFound {
		t.Errorf("recordings.list cam2: %v", werr)
	}
	if res, werr := call(t, d, "recordings.list", ``); werr != nil || len(res["recordings"].([]any)) != 1 {
		t.Errorf("recordings.list: %v %v", res, werr)
	}
}

// recordConfigFile writes a config recording the demo path into dataDir,
// with the playback listener on a free port.
func recordConfigFile(t *testing.T, dataDir, extra string) (file, playback string) {
	t.Helper()
	playback = freePort(t)
	file, _ = testConfig(t, dataDir, fmt.Sprintf(`paths:
  cam:
    source: demo
    record: true
    recordPartDuration: 500ms
    recordSegmentDuration: 1m
%s`, extra))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "playback:\n  address: \"\"", "playback:\n  address: "+playback, 1))
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, playback
}

type span struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration"`
	URL      string    `json:"url"`
}

// listSpans asks the playback listener; nil while it has nothing.
func listSpans(addr, path string) []span {
	resp, err := http.Get("http://" + addr + "/list?path=" + url.QueryEscape(path))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []span
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out
}

// waitSpan polls the listener until path has a span of at least d.
func waitSpan(t *testing.T, addr, path string, d time.Duration, logs fmt.Stringer) span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := listSpans(addr, path); len(s) > 0 && s[len(s)-1].Duration >= d.Seconds() {
			return s[len(s)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span of %s for %s; log:\n%s", d, path, logs)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's listener
	}
}

// The agent records a path of its config (pulling the demo source with
// no reader), reports it in health, and plays it back.
func TestAgentRecordsAndPlaysBack(t *testing.T) {
	file, playback := recordConfigFile(t, t.TempDir(), "")
	var logs testlog.Buffer
	a, stop := startAgent(t, file, &logs)
	sp := waitSpan(t, playback, "cam", 2*time.Second, &logs)
	doc := a.link.health.snapshot(context.Background())
	var rh *uplink.RecordingHealth
	for _, p := range doc.Paths {
		if p.Name == "cam" {
			rh = p.Recording
		}
	}
	if rh == nil || rh.State != "recording" || rh.Bytes == 0 || rh.Segments != 1 || rh.Oldest == nil {
		t.Fatalf("health of cam: %+v", rh)
	}
	resp, err := http.Get(sp.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" || len(body) < 10000 {
		t.Fatalf("GET %s: %s, %d bytes", sp.URL, resp.Status, len(body))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(a.dataDir, "recordings", "cam", "*.mp4"))
	if len(files) != 1 {
		t.Fatalf("segments %v", files)
	}
	if ffmpegDecodes(t, files[0]) == 0 {
		t.Errorf("nothing decoded in %s", files[0])
	}
}

// ffmpegDecodes decodes every frame of file and returns how many video
// frames there were; any error ffmpeg reports fails the test.
func ffmpegDecodes(t *testing.T, file string) int {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", file, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", file, err, out)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	var n int
	fmt.Sscan(strings.TrimSpace(string(out)), &n)
	return n
}

// A SIGKILL mid-segment leaves a file ffmpeg decodes, every part written
// before the kill included; the next start repairs it (duration in its
// header) and lists it.
func TestRecordingSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the agent as a child process")
	}
	dataDir := t.TempDir()
	file, playback := recordConfigFile(t, dataDir, "")
	first := startAgentProc(t, file)
	sp := waitSpan(t, playback, "cam", 3*time.Second, first.logs)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited
	files, _ := filepath.Glob(filepath.Join(dataDir, "recordings", "cam", "*.mp4"))
	if len(files) != 1 {
		t.Fatalf("segments %v", files)
	}
	// The demo runs at 25 fps: at least the frames of the span listed
	// before the kill are in the file.
	frames := ffmpegDecodes(t, files[0])
	if want := int(sp.Duration * 25); frames < want {
		t.Fatalf("%d frames decoded after the kill, want the %d listed before it", frames, want)
	}

	second := startAgentProc(t, file)
	var repaired span
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s := listSpans(playback, "cam"); len(s) > 0 && s[0].Start.Equal(sp.Start) {
			repaired = s[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed segment is not listed after a restart; log:\n%s", second.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if repaired.Duration < sp.Duration {
		t.Errorf("listed after the restart: %.3f s from %s, before the kill %.3f s", repaired.Duration, repaired.Start, sp.Duration)
	}
	if !strings.Contains(second.logs.String(), "segment left open by a stop repaired") {
		t.Errorf("no repair logged:\n%s", second.logs)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-second.exited
	t.Logf("killed after %.1f s listed; %d frames decoded from the killed segment; listed %.1f s after the restart", sp.Duration, frames, repaired.Duration)
}
