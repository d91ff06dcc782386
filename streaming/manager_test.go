package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type chanSink struct{ ch chan Event }

func (s chanSink) Event(e Event) {
	select {
	case s.ch <- e:
	default:
	}
}

func (s chanSink) wait(t *testing.T, typ string) Event {
	t.Helper()
	tm := time.NewTimer(5 * time.Second)
	defer tm.Stop()
	for {
		select {
		case e := <-s.ch:
			if e.Type == typ {
				return e
			}
		case <-tm.C:
			t.Fatalf("no %s event", typ)
		}
	}
}

func newTestManager(t *testing.T, entries map[string]PathConfig) (*Manager, chanSink) {
	t.Helper()
	sink := chanSink{ch: make(chan Event, 64)}
	m, err := NewManager(ManagerOptions{Log: zerolog.Nop(), Events: sink, RetryMin: 20 * time.Millisecond}, entries)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, sink
}

func state(m *Manager, name string) State {
	inf, _ := m.Path(name)
	return inf.State
}

func TestPathStateMachineOnDemand(t *testing.T) {
	m, sink := newTestManager(t, map[string]PathConfig{
		"demo": {Source: SourceDemo, SourceOnDemand: true, CloseAfter: 100 * time.Millisecond},
	})
	if s := state(m, "demo"); s != StateIdle {
		t.Fatalf("initial state %s", s)
	}
	l, err := m.Acquire(context.Background(), "demo", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := state(m, "demo"); s != StateReady {
		t.Fatalf("state after acquire %s", s)
	}
	if l.Stream().Desc().Medias[0].Formats[0].Codec() != "H264" {
		t.Fatal("demo is not H264")
	}
	l2, err := m.Acquire(context.Background(), "demo", ReaderRequest{})
	if err != nil || l2.Stream() != l.Stream() {
		t.Fatalf("second reader: %v, same stream %v", err, l2.Stream() == l.Stream())
	}
	l.Release()
	l.Release() // idempotent
	if inf, _ := m.Path("demo"); inf.Readers != 1 {
		t.Fatalf("readers after one release: %d", inf.Readers)
	}
	l2.Release()
	sink.wait(t, "path.closed")
	if s := state(m, "demo"); s != StateIdle {
		t.Fatalf("state after close-after %s", s)
	}
}

func TestAcquireErrors(t *testing.T) {
	m, _ := newTestManager(t, map[string]PathConfig{
		"demo": {Source: SourceDemo, SourceOnDemand: true, MaxReaders: 1},
		"door": {Source: SourcePublisher},
	})
	if _, err := m.Acquire(context.Background(), "nope", ReaderRequest{}); !errors.Is(err, ErrPathNotFound) {
		t.Fatalf("unknown path: %v", err)
	}
	if _, err := m.Acquire(context.Background(), "door", ReaderRequest{}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("publisher path without publisher: %v", err)
	}
	l, err := m.Acquire(context.Background(), "demo", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := m.Acquire(context.Background(), "demo", ReaderRequest{}); !errors.Is(err, ErrTooManyReaders) {
		t.Fatalf("over maxReaders: %v", err)
	}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}}}
	if _, err := m.Publish("demo", desc, ReaderRequest{}, nil); !errors.Is(err, ErrNotPublisherPath) {
		t.Fatalf("publish to a sourced path: %v", err)
	}
}

type closeRecorder struct {
	closed chan error
}

func (c *closeRecorder) WritePacket(*Packet) bool { return true }
func (c *closeRecorder) Close(err error)          { c.closed <- err }

func TestAddUpdateRemovePath(t *testing.T) {
	m, _ := newTestManager(t, map[string]PathConfig{"demo": {Source: SourceDemo, SourceOnDemand: true}})
	if err := m.AddPath("demo", PathConfig{Source: SourceDemo}); !errors.Is(err, ErrPathExists) {
		t.Fatalf("add existing: %v", err)
	}
	if err := m.UpdatePath("cam9", PathConfig{Source: SourceDemo}); !errors.Is(err, ErrPathNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := m.AddPath("cam9", PathConfig{Source: SourceDemo, SourceOnDemand: false}); err != nil {
		t.Fatal(err)
	}
	l, err := m.Acquire(context.Background(), "cam9", ReaderRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := &closeRecorder{closed: make(chan error, 1)}
	l.Stream().AddReader(r)
	if err := m.RemovePath("cam9"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.closed:
		if !errors.Is(err, ErrStreamClosed) {
			t.Fatalf("reader closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader of a removed path not closed")
	}
	l.Release()
	if _, ok := m.Path("cam9"); ok {
		t.Fatal("removed path still listed")
	}
	if err := m.RemovePath("cam9"); !errors.Is(err, ErrPathNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestAlwaysOnStartsWithRun(t *testing.T) {
	m, sink := newTestManager(t, map[string]PathConfig{"demo": {Source: SourceDemo, SourceOnDemand: false}})
	sink.wait(t, "path.ready")
	if s := state(m, "demo"); s != StateReady {
		t.Fatalf("always-on state %s", s)
	}
	if err := m.RestartPath("demo"); err != nil {
		t.Fatal(err)
	}
	if inf, _ := m.Path("demo"); inf.Reconnects != 1 {
		t.Fatalf("reconnects after restart: %d", inf.Reconnects)
	}
}

func TestStateStrings(t *testing.T) {
	for s, want := range map[State]string{StateUnknown: "unknown", StateIdle: "idle", StateStarting: "starting", StateReady: "ready", StateError: "error"} {
		if s.String() != want {
			t.Errorf("%d: %s", s, s.String())
		}
	}
}

// The bitrate is whole bits/s, so the API and health show 1234567, not
// 1234567.12345678901.
func TestBitrateIsWholeBitsPerSecond(t *testing.T) {
	m, err := NewManager(ManagerOptions{Log: zerolog.Nop()}, map[string]PathConfig{"cam": {Source: SourcePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := m.paths["cam"]
	t0 := time.Now()
	p.bitrateAt(0, t0)
	got := p.bitrateAt(154321, t0.Add(1234567*time.Microsecond))
	if got != 1000001 { // 1234568 bits in 1.234567 s = 1000000.81
		t.Fatalf("bitrate %v, want 1000001", got)
	}
	b, _ := json.Marshal(PathInfo{BitrateIn: got})
	if !strings.Contains(string(b), `"bitrate":1000001,`) {
		t.Fatalf("json %s", b)
	}
}
