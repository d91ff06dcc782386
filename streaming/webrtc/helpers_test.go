package webrtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// Test SPS from mediacommon's test vectors.
var (
	// 1920x1080 constrained baseline: no B-frames by profile.
	spsBaseline = []byte{
		0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
		0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20,
	}
	// 1280x720 high with max_num_reorder_frames = 2: B-frames.
	spsHighBFrames = []byte{
		0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50,
		0x05, 0xbb, 0x01, 0x6c, 0x80, 0x00, 0x00, 0x03,
		0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18,
		0xcb,
	}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func testLogger(t testing.TB) zerolog.Logger {
	if !testing.Verbose() {
		return zerolog.Nop()
	}
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return zerolog.New(w).Level(zerolog.DebugLevel)
}

// testWriter logs to t until the test ends; pion reports the last state
// changes of a closed peer connection from its own goroutines, which may
// run after that.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testServer runs a Server on loopback only: HTTP and ICE on 127.0.0.1,
// no interface addresses, 127.0.0.1 announced as the only candidate.
type testServer struct {
	*Server
	base string
	stop func()
}

func startServer(t testing.TB, o Options) *testServer {
	t.Helper()
	o.Address = "127.0.0.1:0"
	o.ICEUDPMuxAddress = "127.0.0.1:0"
	o.IPsFromInterfaces = false
	o.AdditionalHosts = []string{"127.0.0.1"}
	if o.Logger.GetLevel() == zerolog.NoLevel || true {
		o.Logger = testLogger(t)
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	ts := &testServer{Server: s, base: "http://" + s.Addr().String()}
	ts.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

// newManager returns a running streaming manager with the given paths.
func newManager(t testing.TB, paths map[string]streaming.PathConfig) *streaming.Manager {
	t.Helper()
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: testLogger(t)}, paths)
	if err != nil {
		t.Fatalf("new manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// publisher feeds a publisher path with synthetic H.264 (parameter sets
// only in the format, never in-band, IDR every 10 frames, 25 fps) and
// optionally PCMU audio.
type publisher struct {
	pub    *streaming.Publication
	vmedia *description.Media
	vfmt   *format.H264
	amedia *description.Media
	afmt   *format.G711
	cancel context.CancelFunc
	done   chan struct{}
	tsOf   func(frame int) uint32
}

func publish(t testing.TB, m *streaming.Manager, name string, sps []byte, withAudio bool, extra ...*description.Media) *publisher {
	t.Helper()
	return publishWith(t, m, name, sps, withAudio, func(frame int) uint32 { return uint32(frame * 3600) }, extra...)
}

// bframeOrder gives presentation timestamps in decode order for a GOP
// I P B B P B B ...: a stream with B-frames.
func bframeOrder(frame int) uint32 {
	pts := frame
	if frame%10 != 0 {
		switch frame % 3 {
		case 1:
			pts = frame + 2
		case 2, 0:
			pts = frame - 1
		}
	}
	return uint32(pts * 3600)
}

func publishWith(t testing.TB, m *streaming.Manager, name string, sps []byte, withAudio bool, tsOf func(int) uint32, extra ...*description.Media) *publisher {
	t.Helper()
	p := &publisher{
		tsOf: tsOf,
		vfmt: &format.H264{PayloadTyp: 96, SPS: sps, PPS: testPPS, PacketizationMode: 1},
	}
	p.vmedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{p.vfmt}}
	desc := &description.Session{Medias: []*description.Media{p.vmedia}}
	if withAudio {
		p.afmt = &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}
		p.amedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{p.afmt}}
		desc.Medias = append(desc.Medias, p.amedia)
	}
	desc.Medias = append(desc.Medias, extra...)
	pub, err := m.Publish(name, desc, streaming.ReaderRequest{Protocol: "test"}, func() {})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	p.pub = pub
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan struct{})
	go p.run(ctx)
	t.Cleanup(p.close)
	return p
}

func (p *publisher) close() {
	p.cancel()
	<-p.done
	p.pub.Close()
}

func randomNALU(typ byte, size int) []byte {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	b[0] = 0x60 | typ
	// Keep the payload free of start codes so nothing mistakes it for Annex-B.
	for i := 1; i < len(b); i++ {
		if b[i] == 0 {
			b[i] = 1
		}
	}
	return b
}

func (p *publisher) run(ctx context.Context) {
	defer close(p.done)
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: 1400}
	_ = enc.Init()
	var aseq uint16
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		var au [][]byte
		if frame%10 == 0 {
			au = [][]byte{randomNALU(5, 4000)}
		} else {
			au = [][]byte{randomNALU(1, 600)}
		}
		pkts, _ := enc.Encode(au)
		ts := p.tsOf(frame)
		for _, pk := range pkts {
			pk.Timestamp = ts
			p.pub.WriteRTP(p.vmedia, p.vfmt, pk, time.Now())
		}
		if p.amedia != nil {
			for i := 0; i < 2; i++ {
				aseq++
				ap := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: aseq, Timestamp: uint32(frame*320 + i*160), SSRC: 7}, Payload: bytes.Repeat([]byte{0xff}, 160)}
				p.pub.WriteRTP(p.amedia, p.afmt, ap, time.Now())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// client is an in-process WHEP player on loopback.
type client struct {
	t       testing.TB
	pc      *pwebrtc.PeerConnection
	loc     string
	etag    string
	status  int
	body    string
	mu      sync.Mutex
	nals    []byte // NAL unit types in arrival order, until the first IDR and a few after
	video   atomic.Int64
	audio   atomic.Int64
	gotIDR  chan struct{}
	idrOnce sync.Once
	readers sync.WaitGroup
}

func loopbackAPI(t testing.TB, withH265 bool) *pwebrtc.API {
	t.Helper()
	return loopbackAPIWith(t, withH265, nil)
}

// loopbackAPIWith is loopbackAPI with the setting engine changed by mod.
func loopbackAPIWith(t testing.TB, withH265 bool, mod func(*pwebrtc.SettingEngine)) *pwebrtc.API {
	t.Helper()
	se := pwebrtc.SettingEngine{}
	if mod != nil {
		mod(&se)
	}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	me := &pwebrtc.MediaEngine{}
	for i, plid := range []string{"42001f", "42e01f", "4d001f", "64001f"} {
		if err := me.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: []pwebrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
			PayloadType: pwebrtc.PayloadType(102 + i),
		}, pwebrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	if withH265 {
		if err := me.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH265, ClockRate: 90000,
				SDPFmtpLine: "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"},
			PayloadType: 49,
		}, pwebrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []pwebrtc.RTPCodecParameters{
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, pwebrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	return pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(me))
}

// newClient makes an offer (video and audio, receive only) with every
// candidate gathered.
func newClient(t testing.TB, api *pwebrtc.API) *client {
	t.Helper()
	pc, err := api.NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, pc: pc, gotIDR: make(chan struct{})}
	t.Cleanup(c.close)
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		c.readers.Add(1)
		defer c.readers.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() == pwebrtc.RTPCodecTypeAudio {
				c.audio.Add(1)
				continue
			}
			c.video.Add(1)
			c.noteNALs(pkt.Payload)
		}
	})
	return c
}

func (c *client) noteNALs(p []byte) {
	if len(p) < 1 {
		return
	}
	var types []byte
	switch t := p[0] & 0x1f; t {
	case 24:
		for b := p[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || n+2 > len(b) {
				break
			}
			types = append(types, b[2]&0x1f)
			b = b[2+n:]
		}
	case 28:
		if len(p) > 1 && p[1]&0x80 != 0 {
			types = append(types, p[1]&0x1f)
		}
	default:
		types = append(types, t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range types {
		if len(c.nals) < 64 {
			c.nals = append(c.nals, t)
		}
		if t == 5 {
			c.idrOnce.Do(func() { close(c.gotIDR) })
		}
	}
}

func (c *client) nalTypes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.nals...)
}

func (c *client) offer() string {
	c.t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	g := pwebrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		c.t.Fatal(err)
	}
	<-g
	return c.pc.LocalDescription().SDP
}

// post sends the offer to base+"/"+path+"/whep" and applies a 201 answer.
func (c *client) post(base, path string, header ...string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/"+path+"/whep", bytes.NewBufferString(c.offer()))
	req.Header.Set("Content-Type", "application/sdp")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	c.status, c.body = res.StatusCode, string(b)
	c.loc, c.etag = res.Header.Get("Location"), res.Header.Get("ETag")
	if res.StatusCode != http.StatusCreated {
		return
	}
	if err := c.pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: c.body}); err != nil {
		c.t.Fatalf("set answer: %v", err)
	}
}

func (c *client) close() {
	_ = c.pc.Close()
	c.readers.Wait()
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

func doRequest(t testing.TB, method, url, ctype, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

type nilPaths struct{}

func (nilPaths) Acquire(context.Context, string, streaming.ReaderRequest) (*streaming.Lease, error) {
	return nil, streaming.ErrPathNotFound
}

func pwebrtcConfig() pwebrtc.Configuration { return pwebrtc.Configuration{} }

func gatherOffer(t testing.TB, pc *pwebrtc.PeerConnection) string {
	t.Helper()
	if _, err := pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-g
	return pc.LocalDescription().SDP
}
