package streaming

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/rs/zerolog"
)

// fakeRunner stands for streaming/exec: a runOnDemand "command" publishes
// to its path in process, as ffmpeg would over RTSP.
type fakeRunner struct {
	m       *Manager
	publish bool
	started chan Command
	stopped chan Command
}

func newFakeRunner(publish bool) *fakeRunner {
	return &fakeRunner{publish: publish, started: make(chan Command, 16), stopped: make(chan Command, 16)}
}

func (f *fakeRunner) Run(ctx context.Context, c Command) error {
	f.started <- c
	var pub *Publication
	if f.publish && c.Hook == HookRunOnDemand {
		desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}}}
		var err error
		if pub, err = f.m.Publish(c.Path, desc, ReaderRequest{}, nil); err != nil {
			return err
		}
	}
	<-ctx.Done()
	if pub != nil {
		pub.Close()
	}
	f.stopped <- c
	return nil
}

func recv(t *testing.T, ch chan Command, what string) Command {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no command %s within 5s", what)
	}
	return Command{}
}

func none(t *testing.T, ch chan Command, what string) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("command %s: %+v", what, c)
	default:
	}
}

func commandManager(t *testing.T, r *fakeRunner, entries map[string]PathConfig) *Manager {
	t.Helper()
	m, err := NewManager(ManagerOptions{Log: zerolog.Nop(), Commands: r}, entries)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// A reader of a publisher path with runOnDemand waits for the command's
// publisher; the command is stopped runOnDemandCloseAfter after the last
// reader left, and started again for the next one.
func TestRunOnDemandReaderWaitsForPublisher(t *testing.T) {
	r := newFakeRunner(true)
	m := commandManager(t, r, map[string]PathConfig{"webcam": {Source: SourcePublisher, RunOnDemand: "ffmpeg ...", RunOnDemandCloseAfter: 50 * time.Millisecond}})
	if s := state(m, "webcam"); s != StateIdle {
		t.Fatalf("state before a reader: %s", s)
	}
	none(t, r.started, "started without a reader")
	l, err := m.Acquire(context.Background(), "webcam", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c := recv(t, r.started, "start")
	if c.Hook != HookRunOnDemand || c.Path != "webcam" || c.Line != "ffmpeg ..." || c.Vars["MTX_QUERY"] != "" {
		t.Fatalf("command %+v", c)
	}
	if l.Stream() == nil || state(m, "webcam") != StateReady {
		t.Fatalf("lease without the published stream (state %s)", state(m, "webcam"))
	}
	l2, err := m.Acquire(context.Background(), "webcam", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	none(t, r.started, "started twice")
	l.Release()
	l2.Release()
	recv(t, r.stopped, "stop after the last reader")
	l3, err := m.Acquire(context.Background(), "webcam", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, r.started, "restart for a new reader")
	l3.Release()
	recv(t, r.stopped, "second stop")
}

// A command that never publishes: the reader gets ErrStartTimeout after
// runOnDemandStartTimeout and the command is stopped.
func TestRunOnDemandStartTimeout(t *testing.T) {
	r := newFakeRunner(false)
	m := commandManager(t, r, map[string]PathConfig{"webcam": {Source: SourcePublisher, RunOnDemand: "sleep 60", RunOnDemandStartTimeout: 100 * time.Millisecond, RunOnDemandCloseAfter: time.Hour}})
	_, err := m.Acquire(context.Background(), "webcam", ReaderRequest{})
	if !errors.Is(err, ErrStartTimeout) {
		t.Fatalf("acquire: %v", err)
	}
	recv(t, r.started, "start")
	recv(t, r.stopped, "stop after the start timeout")
	if s := state(m, "webcam"); s != StateIdle {
		t.Fatalf("state after the timeout: %s", s)
	}
}

// Commands of a "~regexp" entry get the groups as G1, G2...; the dynamic
// path goes away with its command.
func TestRunOnDemandRegexpGroups(t *testing.T) {
	r := newFakeRunner(true)
	m := commandManager(t, r, map[string]PathConfig{`~^cam(\d+)_(main|sub)$`: {Source: SourcePublisher, RunOnDemand: "x", RunOnDemandCloseAfter: time.Millisecond}})
	l, err := m.Acquire(context.Background(), "cam7_sub", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c := recv(t, r.started, "start")
	if c.Path != "cam7_sub" || c.Vars["G1"] != "7" || c.Vars["G2"] != "sub" {
		t.Fatalf("command %+v", c)
	}
	l.Release()
	recv(t, r.stopped, "stop")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := m.Path("cam7_sub"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dynamic path left behind")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runOnInit runs while the path exists: from Run, and again after the
// path is replaced; removing the path stops it.
func TestRunOnInitFollowsThePath(t *testing.T) {
	r := newFakeRunner(false)
	m := commandManager(t, r, map[string]PathConfig{"cam": {Source: SourcePublisher, RunOnInit: "ffmpeg -re -i clip.mp4 -f rtsp rtsp://localhost:$RTSP_PORT/$MTX_PATH", RunOnInitRestart: true}})
	c := recv(t, r.started, "start with Run")
	if c.Hook != HookRunOnInit || !c.Restart || c.Path != "cam" {
		t.Fatalf("command %+v", c)
	}
	if err := m.UpdatePath("cam", PathConfig{Source: SourcePublisher, RunOnInit: "other"}); err != nil {
		t.Fatal(err)
	}
	recv(t, r.stopped, "stop on update")
	if c := recv(t, r.started, "start after update"); c.Line != "other" {
		t.Fatalf("command after update %+v", c)
	}
	if err := m.RemovePath("cam"); err != nil {
		t.Fatal(err)
	}
	recv(t, r.stopped, "stop on remove")
}

// Without a runner a runOnDemand path answers at once, as a plain
// publisher path does.
func TestRunOnDemandWithoutRunner(t *testing.T) {
	m, _ := newTestManager(t, map[string]PathConfig{"webcam": {Source: SourcePublisher, RunOnDemand: "x", RunOnDemandStartTimeout: time.Hour}})
	if _, err := m.Acquire(context.Background(), "webcam", ReaderRequest{}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("acquire: %v", err)
	}
}
