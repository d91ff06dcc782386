package hls

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger(t testing.TB) zerolog.Logger {
	if !testing.Verbose() {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
}

func newManager(t testing.TB, paths map[string]streaming.PathConfig) *streaming.Manager {
	t.Helper()
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: testLogger(t)}, paths)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

type testServer struct {
	*Server
	base string
}

func startServer(t testing.TB, o Options) *testServer {
	t.Helper()
	o.Address = "127.0.0.1:0"
	o.Logger = testLogger(t)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	// Run sets its context before serving; requests before that would be
	// refused as arriving at a closed server.
	waitFor(t, "the server to run", 5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ctx != nil
	})
	return &testServer{Server: s, base: "http://" + s.Addr().String()}
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t testing.TB, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

func readers(m *streaming.Manager, name string) int {
	p, _ := m.Path(name)
	return p.Readers
}

// player is gohlslib's own LL-HLS client reading one path.
type player struct {
	c      *gohlslib.Client
	mu     sync.Mutex
	codecs []string
	video  atomic.Int64 // access units
	idr    atomic.Bool  // the first access unit held an IDR
	audio  atomic.Int64 // audio units
	lastV  atomic.Int64 // last video PTS
	back   atomic.Bool  // a video PTS went backwards
}

func play(t testing.TB, url string) *player {
	t.Helper()
	p := &player{}
	p.c = &gohlslib.Client{
		URI: url,
		OnTracks: func(tracks []*gohlslib.Track) error {
			for _, tr := range tracks {
				p.mu.Lock()
				p.codecs = append(p.codecs, codecName(tr.Codec))
				p.mu.Unlock()
				switch tr.Codec.(type) {
				case *codecs.H264, *codecs.H265:
					p.c.OnDataH26x(tr, func(pts, _ int64, au [][]byte) {
						if p.video.Add(1) == 1 {
							for _, n := range au {
								if t, ok := tr.Codec.(*codecs.H264); ok && t != nil && n[0]&0x1f == 5 {
									p.idr.Store(true)
								}
							}
						}
						if pts < p.lastV.Load() {
							p.back.Store(true)
						}
						p.lastV.Store(pts)
					})
				case *codecs.MPEG4Audio:
					p.c.OnDataMPEG4Audio(tr, func(_ int64, aus [][]byte) { p.audio.Add(int64(len(aus))) })
				case *codecs.Opus:
					p.c.OnDataOpus(tr, func(_ int64, pkts [][]byte) { p.audio.Add(int64(len(pkts))) })
				}
			}
			return nil
		},
		OnDownloadPrimaryPlaylist: func(string) {},
		OnDownloadStreamPlaylist:  func(string) {},
		OnDownloadSegment:         func(string) {},
		OnDownloadPart:            func(string) {},
		OnDecodeError:             func(error) {},
	}
	if err := p.c.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *player) close() { p.c.Close() }

func (p *player) tracks() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.codecs...)
}

func codecName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.H264:
		return "H264"
	case *codecs.H265:
		return "H265"
	case *codecs.MPEG4Audio:
		return "AAC"
	case *codecs.Opus:
		return "Opus"
	}
	return "other"
}

// The demo path, on demand, plays over LL-HLS with gohlslib's client: the
// muxer is a reader of the path while it is fetched from, and closes (so
// the source can) once nobody fetches.
func TestPlaysDemoOnDemand(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"demo": {Source: streaming.SourceDemo, SourceOnDemand: true, CloseAfter: 100 * time.Millisecond},
	})
	srv := startServer(t, Options{Paths: m, MuxerCloseAfter: 500 * time.Millisecond})

	p := play(t, srv.base+"/demo/index.m3u8")
	waitFor(t, "50 video access units", 20*time.Second, func() bool { return p.video.Load() >= 50 })
	if got := p.tracks(); len(got) != 1 || got[0] != "H264" {
		t.Errorf("tracks = %v, want [H264]", got)
	}
	if !p.idr.Load() {
		t.Error("the first access unit holds no IDR")
	}
	if p.back.Load() {
		t.Error("video PTS went backwards")
	}
	if n := readers(m, "demo"); n != 1 {
		t.Errorf("readers of demo while muxed = %d, want 1 (the muxer)", n)
	}
	if n := srv.Muxers(); n != 1 {
		t.Errorf("muxers = %d", n)
	}
	p.close()
	waitFor(t, "the idle muxer to close", 10*time.Second, func() bool { return srv.Muxers() == 0 })
	waitFor(t, "the path to lose its reader", 5*time.Second, func() bool { return readers(m, "demo") == 0 })
	waitFor(t, "the on-demand source to close", 5*time.Second, func() bool {
		pi, _ := m.Path("demo")
		return pi.State == streaming.StateIdle
	})
}

// A second client of a running muxer starts from the segments in memory.
func TestSecondClientSharesTheMuxer(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo}})
	srv := startServer(t, Options{Paths: m})
	a := play(t, srv.base+"/demo/index.m3u8")
	defer a.close()
	waitFor(t, "the first client", 20*time.Second, func() bool { return a.video.Load() >= 10 })
	b := play(t, srv.base+"/demo/index.m3u8")
	defer b.close()
	waitFor(t, "the second client", 20*time.Second, func() bool { return b.video.Load() >= 10 })
	if n, r := srv.Muxers(), readers(m, "demo"); n != 1 || r != 1 {
		t.Errorf("muxers %d, readers %d; want one muxer shared", n, r)
	}
}

// relay republishes the demo's H.264 on a publisher path with one audio
// track of synthetic units, so video and audio come from one stream.
func relay(t testing.TB, m *streaming.Manager, name string, audio format.Format, unit func(i int) *rtp.Packet, every time.Duration) *relayed {
	t.Helper()
	lease, err := m.Acquire(context.Background(), "demo", streaming.ReaderRequest{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	src := lease.Stream()
	vmedia := src.Desc().Medias[0]
	desc := &description.Session{Medias: []*description.Media{vmedia}}
	var amedia *description.Media
	if audio != nil {
		amedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{audio}}
		desc.Medias = append(desc.Medias, amedia)
	}
	pub, err := m.Publish(name, desc, streaming.ReaderRequest{Protocol: "test"}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	fw := &forwarder{pub: pub, media: vmedia, q: streaming.NewQueue(4096)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fw.run(ctx) }()
	go func() {
		defer wg.Done()
		if audio == nil {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			pub.WriteRTP(amedia, audio, unit(i), time.Now())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	src.AddReader(fw)
	t.Cleanup(func() {
		src.RemoveReader(fw)
		cancel()
		wg.Wait()
		fw.q.Close()
		pub.Close()
		lease.Release()
	})
	return &relayed{fw: fw, pub: pub}
}

type relayed struct {
	fw  *forwarder
	pub *streaming.Publication
}

type forwarder struct {
	pub    *streaming.Publication
	media  *description.Media
	q      *streaming.Queue
	paused atomic.Bool
}

func (f *forwarder) WritePacket(p *streaming.Packet) bool {
	if f.paused.Load() {
		return true
	}
	return f.q.Push(p)
}
func (f *forwarder) Close(error) {}

func (f *forwarder) run(ctx context.Context) {
	buf := make([]*streaming.Packet, 64)
	for {
		n, err := f.q.Pop(ctx, buf)
		if err != nil {
			return
		}
		for _, p := range buf[:n] {
			f.pub.WriteRTP(f.media, p.Format, p.RTP, p.NTP)
			p.Release()
		}
	}
}

func TestAudioTracks(t *testing.T) {
	aacCfg := &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}
	aac := &format.MPEG4Audio{PayloadTyp: 97, Config: aacCfg, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	aacEnc, err := aac.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	opus := &format.Opus{PayloadTyp: 111, ChannelCount: 2}
	for _, tc := range []struct {
		name  string
		f     format.Format
		unit  func(i int) *rtp.Packet
		every time.Duration
		want  string
	}{
		{"aac", aac, func(i int) *rtp.Packet {
			pkts, err := aacEnc.Encode([][]byte{make([]byte, 200)})
			if err != nil {
				panic(err)
			}
			pkts[0].Timestamp = uint32(i * 1024)
			pkts[0].SequenceNumber = uint16(i)
			return pkts[0]
		}, 1024 * time.Second / 48000, "AAC"},
		{"opus", opus, func(i int) *rtp.Packet {
			// TOC 0xfc: CELT fullband 20 ms, stereo, one frame.
			return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * 960), Marker: true}, Payload: append([]byte{0xfc}, make([]byte, 60)...)}
		}, 20 * time.Millisecond, "Opus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, map[string]streaming.PathConfig{
				"demo": {Source: streaming.SourceDemo},
				"av":   {Source: streaming.SourcePublisher},
			})
			relay(t, m, "av", tc.f, tc.unit, tc.every)
			srv := startServer(t, Options{Paths: m})
			p := play(t, srv.base+"/av/index.m3u8")
			defer p.close()
			waitFor(t, "video and "+tc.want, 20*time.Second, func() bool { return p.video.Load() >= 25 && p.audio.Load() >= 25 })
			if got := strings.Join(p.tracks(), ","); got != "H264,"+tc.want {
				t.Errorf("tracks = %s, want H264,%s", got, tc.want)
			}
		})
	}
}

// A path HLS can carry nothing of is answered 406 with its codecs; the
// failed muxer does not stay.
func TestUnsupportedCodecs(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"mp4v": {Source: streaming.SourcePublisher}})
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MPEG4Video{PayloadTyp: 96}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}}},
	}}
	pub, err := m.Publish("mp4v", desc, streaming.ReaderRequest{Protocol: "test"}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	srv := startServer(t, Options{Paths: m})
	res, body := get(t, srv.base+"/mp4v/index.m3u8")
	if res.StatusCode != http.StatusNotAcceptable || !strings.Contains(body, "MPEG-4 Video") || !strings.Contains(body, "G711") {
		t.Fatalf("GET = %d %q", res.StatusCode, body)
	}
	waitFor(t, "the failed muxer to go", 5*time.Second, func() bool { return srv.Muxers() == 0 && readers(m, "mp4v") == 0 })
}

type fakeAuth struct{ err error }

func (f fakeAuth) CheckContext(_ context.Context, r auth.Request) error {
	if r.Action != auth.ActionRead || r.Proto != "hls" {
		return errors.New("unexpected request")
	}
	if f.err != nil {
		return f.err
	}
	if r.User == "ops" && r.Pass == "s3cret" {
		return nil
	}
	return auth.ErrCredentialsRequired
}

func TestAuthAndErrors(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"demo": {Source: streaming.SourceDemo},
		"door": {Source: streaming.SourcePublisher},
	})
	srv := startServer(t, Options{Paths: m, Auth: fakeAuth{}})
	basic := []string{"Authorization", "Basic b3BzOnMzY3JldA=="}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
		code   int
		check  func(*http.Response, string) string
	}{
		{"no credentials", "/demo/index.m3u8", nil, 401, func(r *http.Response, _ string) string {
			if w := r.Header.Values("WWW-Authenticate"); len(w) != 2 || !strings.HasPrefix(w[0], "Basic") {
				return "challenges " + strings.Join(w, "; ")
			}
			return ""
		}},
		{"from a page's script: no Basic challenge", "/demo/index.m3u8", []string{"X-Requested-With", "camgate-player"}, 401, func(r *http.Response, _ string) string {
			if w := r.Header.Values("WWW-Authenticate"); len(w) != 1 || !strings.HasPrefix(w[0], "Bearer") {
				return "challenges " + strings.Join(w, "; ")
			}
			return ""
		}},
		{"bad name", "/a%20b/index.m3u8", basic, 400, nil},
		{"dot dot", "/../etc/index.m3u8", basic, 400, nil},
		{"no file", "/demo", basic, 404, nil},
		{"unknown path", "/nope/index.m3u8", basic, 404, nil},
		{"publisher path without publisher", "/door/index.m3u8", basic, 404, nil},
		{"file of no muxer", "/demo/abc_video1_stream.m3u8", basic, 404, func(_ *http.Response, body string) string {
			if !strings.Contains(body, "index.m3u8") {
				return "body " + body
			}
			return ""
		}},
		{"playlist", "/demo/index.m3u8", basic, 200, func(r *http.Response, body string) string {
			if !strings.Contains(body, "#EXT-X-STREAM-INF") || r.Header.Get("Access-Control-Allow-Origin") != "*" {
				return "body " + body
			}
			return ""
		}},
		{"unknown file of a running muxer", "/demo/abc_video1_part9999.mp4", basic, 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, srv.base+tc.path, tc.header...)
			if res.StatusCode != tc.code {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, res.StatusCode, body, tc.code)
			}
			if tc.check != nil {
				if msg := tc.check(res, body); msg != "" {
					t.Error(msg)
				}
			}
		})
	}

	req, _ := http.NewRequest(http.MethodOptions, srv.base+"/demo/index.m3u8", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("OPTIONS = %d %v", res.StatusCode, res.Header)
	}

	for _, tc := range []struct {
		err  error
		code int
	}{
		{&auth.RetryError{Err: auth.ErrThrottled, RetryAfter: 3 * time.Second}, 429},
		{&auth.RetryError{Err: auth.ErrBusy, RetryAfter: time.Second}, 503},
	} {
		srv := startServer(t, Options{Paths: m, Auth: fakeAuth{err: tc.err}})
		res, _ := get(t, srv.base+"/demo/index.m3u8", basic...)
		if res.StatusCode != tc.code || res.Header.Get("Retry-After") == "" {
			t.Errorf("%v: %d, Retry-After %q", tc.err, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
}

// Stopping the server ends requests that wait for a part and releases
// every path.
func TestStopReleasesEverything(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo}})
	o := Options{Paths: m, Address: "127.0.0.1:0", Logger: testLogger(t)}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()
	p := play(t, base+"/demo/index.m3u8")
	defer p.close()
	waitFor(t, "frames", 20*time.Second, func() bool { return p.video.Load() > 5 })
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
	if r := readers(m, "demo"); r != 0 {
		t.Errorf("readers after stop = %d", r)
	}
}

// A stream that ends while a player waits for the next part (an LL-HLS
// preload hint) releases that request, and every goroutine: see closer.
func TestCloseReleasesWaitingHints(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"demo": {Source: streaming.SourceDemo},
		"cam":  {Source: streaming.SourcePublisher},
	})
	r := relay(t, m, "cam", nil, nil, 0)
	srv := startServer(t, Options{Paths: m})
	res, body := get(t, srv.base+"/cam/index.m3u8")
	if res.StatusCode != 200 {
		t.Fatalf("index = %d %q", res.StatusCode, body)
	}
	media := ""
	for _, l := range strings.Split(body, "\n") {
		if strings.HasSuffix(l, ".m3u8") && !strings.HasPrefix(l, "#") {
			media = l
		}
	}
	r.fw.paused.Store(true) // no new part from now on
	_, pl := get(t, srv.base+"/cam/"+media)
	hint := ""
	for _, l := range strings.Split(pl, "\n") {
		if v, ok := strings.CutPrefix(l, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI="); ok {
			hint = strings.Trim(v, "\"\r")
		}
	}
	if hint == "" {
		t.Fatalf("no preload hint in\n%s", pl)
	}
	srv.mu.Lock()
	mx := srv.muxers["cam"]
	srv.mu.Unlock()
	got := make(chan int, 1)
	go func() {
		res, err := http.Get(srv.base + "/cam/" + hint)
		if err != nil {
			got <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		got <- res.StatusCode
	}()
	waitFor(t, "the hint request to wait inside the muxer", 5*time.Second, func() bool { return mx.active.Load() == 1 })
	start := time.Now()
	r.pub.Close() // the stream ends
	select {
	case code := <-got:
		if code != 200 {
			t.Errorf("waiting hint request answered %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request waiting for a part was never answered")
	}
	<-mx.done
	if d := time.Since(start); d >= 2*time.Second {
		t.Errorf("closing took %v: the nudge did not end a part, the closer waited its bound", d)
	}
	// More requests still work on a fresh muxer: nothing is stuck.
	res, _ = get(t, srv.base+"/demo/index.m3u8")
	if res.StatusCode != 200 {
		t.Errorf("another path after the close = %d", res.StatusCode)
	}
}
