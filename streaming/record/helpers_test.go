package record

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/streaming"
)

// events collects what the recorder raises.
type events struct {
	mu  sync.Mutex
	evs []streaming.Event
}

func (e *events) Event(ev streaming.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) of(typ string) []streaming.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []streaming.Event
	for _, ev := range e.evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// waker tells the recorder of paths that got a stream, as the agent does.
type waker struct{ rec atomic.Pointer[Recorder] }

func (w *waker) Event(ev streaming.Event) {
	if r := w.rec.Load(); r != nil && ev.Type == "path.ready" {
		r.Wake(ev.Path)
	}
}

// harness is a path manager with a publisher path "cam" and a recorder
// of it, both running until the test ends.
type harness struct {
	t    testing.TB
	m    *streaming.Manager
	rec  *Recorder
	dir  string
	ev   *events
	stop func()
}

func newHarness(t testing.TB, cfg PathConfig, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), ev: &events{}}
	wake := &waker{}
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: zerolog.Nop(), Events: wake, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond},
		map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}, streaming.CatchAll: {Source: streaming.SourcePublisher}})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	o := Options{
		Log: zerolog.Nop(), Events: h.ev, Paths: m, BaseDir: h.dir, QueueSize: 1 << 16,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Resolve: m.EntryFor,
	}
	if mod != nil {
		mod(&o)
	}
	rec, err := New(o, map[string]PathConfig{"cam": cfg, streaming.CatchAll: cfg})
	if err != nil {
		t.Fatal(err)
	}
	h.rec = rec
	wake.rec.Store(rec)
	ctx, cancel := context.WithCancel(context.Background())
	mdone, rdone := make(chan struct{}), make(chan struct{})
	go func() { _ = m.Run(ctx); close(mdone) }()
	go func() { _ = rec.Run(ctx); close(rdone) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			<-rdone
			<-mdone
		})
	}
	t.Cleanup(h.stop)
	return h
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// feeder publishes H.264 (and G.711 when audio) on a path with a clock
// of its own: frame n is stamped wall + n/fps, so a minute of recording
// takes a fraction of one.
type feeder struct {
	t      testing.TB
	pub    *streaming.Publication
	desc   *description.Session
	enc    *rtph264.Encoder
	vf     *format.H264
	af     *format.G711
	aus    [][][]byte // cycled; aus[0] is a keyframe
	fps    int
	wall   time.Time
	n      int
	ssrc   uint32
	tsBase uint32
	aseq   uint16
	silent bool // no audio packets
}

// fakeAUs is a GOP of frames a decoder would refuse but a muxer takes:
// testcam's parameter sets, an IDR, then P frames.
func fakeAUs(gop, size int) [][][]byte {
	var out [][][]byte
	for i := 0; i < gop; i++ {
		if i == 0 {
			idr := make([]byte, size*4)
			idr[0] = 0x65
			out = append(out, [][]byte{testcam.SPS, testcam.PPS, idr})
			continue
		}
		p := make([]byte, size)
		p[0] = 0x41
		out = append(out, [][]byte{p})
	}
	return out
}

var (
	clipOnce sync.Once
	clipAUs  [][][]byte
	clipErr  error
)

// realAUs is a real 320x240 H.264 stream, 25 fps, a keyframe a second,
// made by ffmpeg once per run; the test is skipped without ffmpeg.
func realAUs(t *testing.T) [][][]byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	clipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "record-clip-")
		if err != nil {
			clipErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "clip.h264")
		cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2",
			"-c:v", "libx264", "-profile:v", "baseline", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-bf", "0",
			"-pix_fmt", "yuv420p", "-x264-params", "aud=1", "-f", "h264", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			clipErr = fmt.Errorf("%w: %s", err, b)
			return
		}
		data, err := os.ReadFile(out)
		if err != nil {
			clipErr = err
			return
		}
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(data); err != nil {
			clipErr = err
			return
		}
		var au [][]byte
		for _, n := range nalus {
			if h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
				if len(au) > 0 {
					clipAUs = append(clipAUs, au)
				}
				au = nil
				continue
			}
			au = append(au, n)
		}
		if len(au) > 0 {
			clipAUs = append(clipAUs, au)
		}
	})
	if clipErr != nil {
		t.Fatalf("make clip: %v", clipErr)
	}
	return clipAUs
}

// publish starts a publisher of aus on name (with a G.711 track when
// audio); frames are written with frames().
func publish(t testing.TB, m *streaming.Manager, name string, aus [][][]byte, audio bool, wall time.Time) *feeder {
	t.Helper()
	var sps, pps []byte
	for _, n := range aus[0] {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		}
	}
	f := &feeder{t: t, aus: aus, fps: 25, wall: wall, ssrc: 0x1234}
	f.vf = &format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1}
	f.desc = &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f.vf}}}}
	if audio {
		f.af = &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}
		f.desc.Medias = append(f.desc.Medias, &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f.af}})
	}
	if err := f.initEncoder(); err != nil {
		t.Fatal(err)
	}
	pub, err := m.Publish(name, f.desc, streaming.ReaderRequest{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.pub = pub
	return f
}

func (f *feeder) initEncoder() error {
	f.enc = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	return f.enc.Init()
}

// frames writes k video frames, and 40 ms of audio after each.
func (f *feeder) frames(k int) {
	f.t.Helper()
	for i := 0; i < k; i++ {
		au := f.aus[f.n%len(f.aus)]
		pkts, err := f.enc.Encode(au)
		if err != nil {
			f.t.Fatal(err)
		}
		ts := f.tsBase + uint32(f.n*90000/f.fps)
		at := f.wall.Add(time.Duration(f.n) * time.Second / time.Duration(f.fps))
		for _, p := range pkts {
			p.Timestamp, p.SSRC = ts, f.ssrc
			f.pub.WriteRTP(f.desc.Medias[0], f.vf, p, at)
		}
		if f.af != nil && !f.silent {
			payload := make([]byte, 320)
			_, _ = rand.Read(payload)
			for j := range 2 {
				f.aseq++
				p := rtpPacket(0, f.aseq, f.tsBase+uint32(f.n*320+j*160), f.ssrc+1, payload[j*160:(j+1)*160])
				f.pub.WriteRTP(f.desc.Medias[1], f.af, p, at.Add(time.Duration(j)*20*time.Millisecond))
			}
		}
		f.n++
	}
}

// ffprobe runs ffprobe with args and returns its output; the test is
// skipped without it.
func ffprobe(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	b, err := exec.Command("ffprobe", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: true}, Payload: payload}
}
