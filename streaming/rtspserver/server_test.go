package rtspserver_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtcp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/rtspserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events collects path events and lets tests wait for one.
type events struct {
	mu      sync.Mutex
	all     []streaming.Event
	denials []auth.Denial
	ch      chan streaming.Event
}

func newEvents() *events { return &events{ch: make(chan streaming.Event, 256)} }

func (e *events) Event(ev streaming.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

// Denied records auth's reports and passes them on as events, as the
// agent does.
func (e *events) Denied(d auth.Denial) {
	e.mu.Lock()
	e.denials = append(e.denials, d)
	e.mu.Unlock()
	e.Event(streaming.Event{Type: d.Kind, Path: d.Path})
}

func (e *events) deniedReports() []auth.Denial {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]auth.Denial(nil), e.denials...)
}

func (e *events) wait(t *testing.T, typ, path string, timeout time.Duration) streaming.Event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case ev := <-e.ch:
			if ev.Type == typ && ev.Path == path {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no %s event for %q within %s", typ, path, timeout)
		}
	}
}

type relay struct {
	m      *streaming.Manager
	srv    *rtspserver.Server
	auth   *auth.Authenticator
	ev     *events
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *relay) url(path string) string { return "rtsp://" + r.addr + "/" + path }

var anyReadLocalPublish = []auth.User{
	{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
	{Name: "any", IPs: []string{"127.0.0.1/32"}, Permissions: []auth.Permission{{Action: auth.ActionPublish}}},
}

func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeUDPPair finds free consecutive 127.0.0.1 ports, the first even.
func freeUDPPair(t *testing.T) (string, string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if p%2 == 1 {
			p++
		}
		x, err1 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		y, err2 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if x != nil {
			x.Close()
		}
		if y != nil {
			y.Close()
		}
		if err1 == nil && err2 == nil {
			return fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", p+1)
		}
	}
	t.Fatal("no free UDP port pair")
	return "", ""
}

func startRelay(t *testing.T, paths map[string]streaming.PathConfig, users []auth.User, mod func(*rtspserver.Options)) *relay {
	t.Helper()
	return startRelayAuth(t, paths, users, auth.Options{}, mod)
}

// startRelayAuth is startRelay with auth options; their Denials go to the
// relay's events.
func startRelayAuth(t *testing.T, paths map[string]streaming.PathConfig, users []auth.User, ao auth.Options, mod func(*rtspserver.Options)) *relay {
	t.Helper()
	if users == nil {
		users = anyReadLocalPublish
	}
	ev := newEvents()
	log := zerolog.Nop()
	m, err := streaming.NewManager(streaming.ManagerOptions{Log: log, Events: ev, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond}, paths)
	if err != nil {
		t.Fatal(err)
	}
	ao.Denials = ev
	az, err := auth.New(users, ao)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(az.Close)
	rtpA, rtcpA := freeUDPPair(t)
	opts := rtspserver.Options{Address: freeAddr(t, "tcp"), UDP: true, TCP: true, RTPAddress: rtpA, RTCPAddress: rtcpA, Log: log, Events: ev}
	if mod != nil {
		mod(&opts)
	}
	srv := rtspserver.New(opts, m, az)
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{m: m, srv: srv, auth: az, ev: ev, addr: opts.Address, cancel: cancel, done: make(chan struct{})}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-r.done
	})
	return r
}

func onDemand(url string) streaming.PathConfig {
	return streaming.PathConfig{Source: url, SourceOnDemand: true, StartTimeout: 3 * time.Second, CloseAfter: 300 * time.Millisecond, RTSPTransport: "tcp", ReadTimeout: 2 * time.Second}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOnDemandStartsAndClosesAfterDelay(t *testing.T) {
	cam := testcam.New(t)
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)

	if cam.Describes() != 0 {
		t.Fatal("on-demand camera pulled before any reader")
	}
	if info, _ := r.m.Path("cam"); info.State != streaming.StateIdle {
		t.Fatalf("state before reading: %s", info.State)
	}
	rd, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 20, 5*time.Second)
	if info, _ := r.m.Path("cam"); info.State != streaming.StateReady || info.Readers != 1 || info.BytesIn == 0 {
		t.Fatalf("while reading: %+v", info)
	}
	left := time.Now()
	rd.Close()
	r.ev.wait(t, "path.closed", "cam", 3*time.Second)
	if d := time.Since(left); d < 300*time.Millisecond {
		t.Fatalf("source closed %s after the last reader, before sourceOnDemandCloseAfter", d)
	}
	waitFor(t, "camera session closed", 3*time.Second, func() bool { return cam.Readers() == 0 })
	if info, _ := r.m.Path("cam"); info.State != streaming.StateIdle {
		t.Fatalf("state after close: %s", info.State)
	}
}

func TestOnDemandReusedWithinCloseWindow(t *testing.T) {
	cam := testcam.New(t)
	pc := onDemand(cam.URL())
	pc.CloseAfter = 5 * time.Second
	r := startRelay(t, map[string]streaming.PathConfig{"cam": pc}, nil, nil)
	rd, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	rd.Close()
	rd2, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	rd2.WaitPackets(t, 10, 5*time.Second)
	if n := cam.Sessions(); n != 1 {
		t.Fatalf("camera sessions = %d, want 1 (source reused)", n)
	}
}

func TestOnDemandStartTimeout(t *testing.T) {
	hole := testcam.BlackHole(t)
	pc := onDemand(hole)
	pc.StartTimeout = 400 * time.Millisecond
	r := startRelay(t, map[string]streaming.PathConfig{"dead": pc}, nil, nil)
	start := time.Now()
	_, err := testcam.Read(t, r.url("dead"), false)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("read of a hanging camera: %v, want 404", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("answered after %s, want about the start timeout", d)
	}
	ev := r.ev.wait(t, "path.start_timeout", "dead", time.Second)
	if !strings.Contains(ev.Detail, "400ms") {
		t.Fatalf("event detail %q", ev.Detail)
	}
}

func TestAlwaysOnReconnectsAfterCameraRestart(t *testing.T) {
	cam := testcam.New(t)
	pc := onDemand(cam.URL())
	pc.SourceOnDemand = false
	r := startRelay(t, map[string]streaming.PathConfig{"cam": pc}, nil, nil)
	r.ev.wait(t, "path.ready", "cam", 5*time.Second)

	rd, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	cam.Stop()
	r.ev.wait(t, "path.error", "cam", 5*time.Second)
	// A reader joining while the camera is away gets no stale picture.
	late, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	before := rd.Packets()
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	r.ev.wait(t, "path.ready", "cam", 5*time.Second)
	// Same tracks: the reader stayed connected and gets the new packets.
	rd.WaitPackets(t, before+20, 5*time.Second)
	late.WaitPackets(t, 20, 5*time.Second)
	if nt := late.NALTypes(); nt[0] != 7 {
		t.Fatalf("reader that joined during the outage starts with NAL %d, want the new SPS", nt[0])
	}
	if info, _ := r.m.Path("cam"); info.Reconnects == 0 || info.State != streaming.StateReady {
		t.Fatalf("after reconnect: %+v", info)
	}
}

func TestReadTimeoutOnSilentCamera(t *testing.T) {
	cam := testcam.New(t)
	pc := onDemand(cam.URL())
	pc.SourceOnDemand = false
	pc.ReadTimeout = 500 * time.Millisecond
	r := startRelay(t, map[string]streaming.PathConfig{"cam": pc}, nil, nil)
	r.ev.wait(t, "path.ready", "cam", 5*time.Second)
	cam.Silence(true)
	silent := time.Now()
	r.ev.wait(t, "path.error", "cam", 5*time.Second)
	if d := time.Since(silent); d < 400*time.Millisecond {
		t.Fatalf("camera declared lost after %s, before readTimeout", d)
	}
	if info, _ := r.m.Path("cam"); info.LastError == "" {
		t.Fatal("no last error recorded")
	}
	cam.Silence(false)
	r.ev.wait(t, "path.ready", "cam", 5*time.Second)
}

func TestTwentyReaders(t *testing.T) {
	cam := testcam.New(t)
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)
	var rs []*testcam.Reader
	for i := 0; i < 20; i++ {
		rd, err := testcam.Read(t, r.url("cam"), i%2 == 1)
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		rs = append(rs, rd)
	}
	for _, rd := range rs {
		rd.WaitPackets(t, 50, 10*time.Second)
	}
	if n := cam.Sessions(); n != 1 {
		t.Fatalf("camera sessions = %d, want 1 for 20 readers", n)
	}
	if info, _ := r.m.Path("cam"); info.Readers != 20 {
		t.Fatalf("readers = %d", info.Readers)
	}
}

// rawRTSP speaks RTSP by hand over one connection, for clients that must
// misbehave (stall) or inspect the wire.
type rawRTSP struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	cseq int
}

// do sends a request and reads a 200 response's headers (lower-case) and body.
func (r *rawRTSP) do(method, u string, hdr ...string) (map[string]string, string) {
	r.t.Helper()
	r.cseq++
	req := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", method, u, r.cseq, strings.Join(hdr, ""))
	if _, err := io.WriteString(r.c, req); err != nil {
		r.t.Fatal(err)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = r.c.SetReadDeadline(time.Time{}) }()
	status, err := r.br.ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		r.t.Fatalf("%s: %q %v", method, status, err)
	}
	h := map[string]string{}
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		h[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	n, _ := strconv.Atoi(h["content-length"])
	body := make([]byte, n)
	if _, err := io.ReadFull(r.br, body); err != nil {
		r.t.Fatal(err)
	}
	return h, string(body)
}

// stalledReader plays a path over TCP and then never reads its socket.
func stalledReader(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	// A tiny receive buffer, set before connecting, keeps the TCP window
	// small so the server's queue for this reader fills quickly.
	d := net.Dialer{Control: smallReceiveBuffer}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawRTSP{t: t, c: c, br: bufio.NewReader(c)}
	rc.playTCP("rtsp://" + addr + "/" + path)
	return c
}

// playTCP reads the first track of url over interleaved channels 0-1 and
// returns the SSRC the SETUP response announced.
func (r *rawRTSP) playTCP(url string) uint32 {
	r.t.Helper()
	_, sdp := r.do("DESCRIBE", url, "Accept: application/sdp\r\n")
	control := "trackID=0"
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "a=control:") && !strings.Contains(l, "*") {
			control = strings.TrimSpace(strings.TrimPrefix(l, "a=control:"))
		}
	}
	h, _ := r.do("SETUP", url+"/"+control, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
	var ssrc uint32
	for _, f := range strings.Split(h["transport"], ";") {
		if v, ok := strings.CutPrefix(f, "ssrc="); ok {
			n, _ := strconv.ParseUint(v, 16, 32)
			ssrc = uint32(n)
		}
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	r.do("PLAY", url, "Session: "+sess+"\r\n")
	return ssrc
}

func TestStalledReaderDoesNotSlowOthers(t *testing.T) {
	cam := testcam.New(t, func(c *testcam.Camera) { c.FrameSize = 20000 }) // many packets per frame
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, func(o *rtspserver.Options) {
		o.WriteQueueSize = 64
		o.WriteTimeout = time.Second
	})
	good, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	good.WaitPackets(t, 10, 5*time.Second)
	stalledReader(t, r.addr, "cam")
	waitFor(t, "packets dropped for the stalled reader", 10*time.Second, func() bool {
		info, _ := r.m.Path("cam")
		return info.Dropped > 0
	})
	// With the stalled reader's queue full, the good one still gets
	// everything: compare with what the source received meanwhile.
	in0, _ := r.m.Path("cam")
	got0 := good.Packets()
	good.WaitPackets(t, got0+300, 5*time.Second)
	in1, _ := r.m.Path("cam")
	got := good.Packets() - got0
	sent := int(in1.PacketsIn - in0.PacketsIn)
	if got < sent*9/10 {
		t.Fatalf("good reader got %d of %d packets while another reader stalled", got, sent)
	}
	// A reader that takes nothing for the write timeout is disconnected.
	waitFor(t, "the stalled reader disconnected", 10*time.Second, func() bool {
		info, _ := r.m.Path("cam")
		return info.Readers == 1
	})
	good.WaitPackets(t, good.Packets()+50, 5*time.Second)
}

func publish(t *testing.T, url string) (*gortsplib.Client, func(), error) {
	t.Helper()
	forma := &format.H264{PayloadTyp: 96, SPS: testcam.SPS, PPS: testcam.PPS, PacketizationMode: 1}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	c := &gortsplib.Client{}
	if err := c.StartRecording(url, desc); err != nil {
		return nil, nil, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
		_ = enc.Init()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			au := [][]byte{{0x41, 1, 2, 3}}
			if n%25 == 0 {
				au = [][]byte{testcam.SPS, testcam.PPS, {0x65, 1, 2, 3}}
			}
			pkts, _ := enc.Encode(au)
			for _, p := range pkts {
				p.Timestamp = uint32(n * 1800)
				_ = c.WritePacketRTP(desc.Medias[0], p)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			close(stop)
			<-done
			c.Close()
		})
	}
	t.Cleanup(closeFn)
	return c, closeFn, nil
}

func TestPublisherAuthAndSecondPublisher(t *testing.T) {
	users := []auth.User{
		{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		{Name: "pub", Pass: "secret", Permissions: []auth.Permission{{Action: auth.ActionPublish}}},
	}
	door := streaming.PathConfig{Source: streaming.SourcePublisher}
	r := startRelay(t, map[string]streaming.PathConfig{"door": door}, users, nil)
	base := strings.TrimPrefix(r.url("door"), "rtsp://")

	if _, _, err := publish(t, "rtsp://"+base); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous publish: %v, want 401", err)
	}
	if _, _, err := publish(t, "rtsp://pub:wrong@"+base); err == nil {
		t.Fatal("publish with a wrong password accepted")
	}
	r.ev.wait(t, "publisher.denied", "door", time.Second)
	_, stop, err := publish(t, "rtsp://pub:secret@"+base)
	if err != nil {
		t.Fatalf("publish with credentials: %v", err)
	}
	if _, _, err := publish(t, "rtsp://pub:secret@"+base); err == nil {
		t.Fatal("second publisher accepted")
	}
	rd, err := testcam.Read(t, r.url("door"), false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 20, 5*time.Second)
	stop()
	select {
	case <-rd.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("reader not disconnected when the publisher left")
	}
	if _, stop2, err := publish(t, "rtsp://pub:secret@"+base); err != nil {
		t.Fatalf("publish after the first publisher left: %v", err)
	} else {
		stop2()
	}
}

func TestCatchAllPublishFromLoopback(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{streaming.CatchAll: {Source: streaming.SourcePublisher}}, nil, nil)
	if _, err := testcam.Read(t, r.url("mystream"), false); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("read before publish: %v, want 404", err)
	}
	_, stop, err := publish(t, r.url("mystream"))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := testcam.Read(t, r.url("mystream"), true)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 20, 5*time.Second)
	stop()
	<-rd.Done()
	waitFor(t, "dynamic path removed", 3*time.Second, func() bool {
		_, ok := r.m.Path("mystream")
		return !ok
	})
}

func TestUnknownPath404(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, nil, nil)
	_, err := testcam.Read(t, r.url("nope"), false)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown path: %v, want 404", err)
	}
}

func TestReadAuth(t *testing.T) {
	users := []auth.User{{Name: "viewer", Pass: "pw", Permissions: []auth.Permission{{Action: auth.ActionRead}}}}
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, users, nil)
	if _, err := testcam.Read(t, r.url("demo"), false); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous read: %v, want 401", err)
	}
	// gortsplib's client answers the challenge with Digest.
	rd, err := testcam.Read(t, "rtsp://viewer:pw@"+r.addr+"/demo", false)
	if err != nil {
		t.Fatalf("read with credentials: %v", err)
	}
	rd.WaitPackets(t, 5, 5*time.Second)
}

func TestHashedPasswordReaderGetsBasicChallenge(t *testing.T) {
	sum := sha256.Sum256([]byte("pw"))
	users := []auth.User{{Name: "viewer", Pass: "sha256:" + base64.StdEncoding.EncodeToString(sum[:]), Permissions: []auth.Permission{{Action: auth.ActionRead}}}}
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, users, func(o *rtspserver.Options) {
		o.BasicOnly = true
	})
	rd, err := testcam.Read(t, "rtsp://viewer:pw@"+r.addr+"/demo", false)
	if err != nil {
		t.Fatalf("read as a user with a hashed password: %v", err)
	}
	rd.WaitPackets(t, 5, 5*time.Second)
	if _, err := testcam.Read(t, "rtsp://viewer:nope@"+r.addr+"/demo", false); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestPauseStopsAndPlayResumesAtKeyframe(t *testing.T) {
	cam := testcam.New(t)
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)
	for _, udp := range []bool{false, true} {
		rd, err := testcam.Read(t, r.url("cam"), udp)
		if err != nil {
			t.Fatal(err)
		}
		rd.WaitPackets(t, 30, 5*time.Second)
		if _, err := rd.Client.Pause(); err != nil {
			t.Fatalf("udp=%v: pause: %v", udp, err)
		}
		// The camera sends 50 frames/s: a paused reader that still got
		// packets would show it within this window.
		paused := rd.Packets()
		time.Sleep(300 * time.Millisecond)
		if got := rd.Packets(); got > paused+2 {
			t.Fatalf("udp=%v: %d packets arrived while paused", udp, got-paused)
		}
		before := len(rd.NALTypes())
		if _, err := rd.Client.Play(nil); err != nil {
			t.Fatalf("udp=%v: play after pause: %v", udp, err)
		}
		rd.WaitPackets(t, rd.Packets()+20, 5*time.Second)
		nt := rd.NALTypes()
		if k := nt[before]; k != 7 && k != 5 {
			t.Fatalf("udp=%v: resumed with NAL %d, want a keyframe: %v", udp, k, nt[before:before+3])
		}
		rd.Close()
	}
}

func TestInstantStart(t *testing.T) {
	cam := testcam.New(t, func(c *testcam.Camera) { c.GOP = 100 }) // a keyframe every 2 s
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)
	first, err := testcam.Read(t, r.url("cam"), false)
	if err != nil {
		t.Fatal(err)
	}
	first.WaitPackets(t, 60, 5*time.Second) // well past the first IDR
	for i := 0; i < 3; i++ {
		late, err := testcam.Read(t, r.url("cam"), i == 1)
		if err != nil {
			t.Fatal(err)
		}
		late.WaitPackets(t, 3, 2*time.Second)
		d, ok := late.FirstKeyAfter()
		if !ok || d > 150*time.Millisecond {
			t.Fatalf("late reader %d: first keyframe after %v (ok=%v), want < 150ms", i, d, ok)
		}
		nt := late.NALTypes()
		if nt[0] != 7 && nt[0] != 5 {
			t.Fatalf("late reader %d starts with NAL type %d, want SPS or IDR: %v", i, nt[0], nt[:3])
		}
		late.Close()
	}
}

func TestDemoOverUDPAndTCP(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, nil, nil)
	for _, udp := range []bool{false, true} {
		rd, err := testcam.Read(t, r.url("demo"), udp)
		if err != nil {
			t.Fatalf("udp=%v: %v", udp, err)
		}
		rd.WaitPackets(t, 30, 5*time.Second)
		if nt := rd.NALTypes(); nt[0] != 7 {
			t.Fatalf("udp=%v: demo starts with NAL %d, want SPS", udp, nt[0])
		}
	}
}

// A TCP reader gets interleaved RTP on the channel and with the SSRC its
// SETUP response announced, right after the PLAY response.
func TestTCPReaderChannelAndSSRC(t *testing.T) {
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, nil, nil)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	rc := &rawRTSP{t: t, c: c, br: br}
	url := r.url("demo")
	rc.do("DESCRIBE", url, "Accept: application/sdp\r\n")
	h, _ := rc.do("SETUP", url+"/trackID=0", "Transport: RTP/AVP/TCP;unicast;interleaved=6-7\r\n")
	var ssrc string
	for _, f := range strings.Split(h["transport"], ";") {
		if v, ok := strings.CutPrefix(f, "ssrc="); ok {
			ssrc = strings.ToLower(v)
		}
	}
	if ssrc == "" {
		t.Fatalf("no ssrc in %q", h["transport"])
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	rc.do("PLAY", url, "Session: "+sess+"\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 50; i++ {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if hdr[0] != '$' {
			t.Fatalf("frame %d: %q, want an interleaved frame", i, hdr[:])
		}
		body := make([]byte, int(hdr[2])<<8|int(hdr[3]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		if hdr[1] == 7 {
			continue // RTCP
		}
		if hdr[1] != 6 || len(body) < 12 {
			t.Fatalf("frame %d on channel %d, %d bytes", i, hdr[1], len(body))
		}
		if got := fmt.Sprintf("%x", binary.BigEndian.Uint32(body[8:12])); got != strings.TrimLeft(ssrc, "0") {
			t.Fatalf("frame %d: ssrc %s, announced %s", i, got, ssrc)
		}
	}
}

// udpPlay is a hand-written RTP/UDP reader of one track.
type udpPlay struct {
	rtp, rtcp             net.PacketConn // the client's ports
	ssrc                  uint32
	serverRTP, serverRTCP int
}

// playUDP reads the first track of url over RTP/UDP on two fresh
// loopback ports.
func playUDP(t *testing.T, addr, url string) *udpPlay {
	t.Helper()
	rtpAddr, rtcpAddr := freeUDPPair(t)
	u := &udpPlay{serverRTP: -1, serverRTCP: -1}
	var err error
	if u.rtp, err = net.ListenPacket("udp", rtpAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.rtp.Close() })
	if u.rtcp, err = net.ListenPacket("udp", rtcpAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.rtcp.Close() })
	port := u.rtp.LocalAddr().(*net.UDPAddr).Port
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawRTSP{t: t, c: c, br: bufio.NewReader(c)}
	rc.do("DESCRIBE", url, "Accept: application/sdp\r\n")
	h, _ := rc.do("SETUP", url+"/trackID=0", fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d\r\n", port, port+1))
	for _, f := range strings.Split(h["transport"], ";") {
		if v, ok := strings.CutPrefix(f, "ssrc="); ok {
			n, _ := strconv.ParseUint(v, 16, 32)
			u.ssrc = uint32(n)
		}
		if v, ok := strings.CutPrefix(f, "server_port="); ok {
			a, b, _ := strings.Cut(v, "-")
			u.serverRTP, _ = strconv.Atoi(a)
			u.serverRTCP, _ = strconv.Atoi(b)
		}
	}
	if u.ssrc == 0 || u.serverRTP < 0 || u.serverRTCP < 0 {
		t.Fatalf("no ssrc or server_port in %q", h["transport"])
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	rc.do("PLAY", url, "Session: "+sess+"\r\n")
	return u
}

// TestUDPReaderPortAndSSRC reads a path over RTP/UDP by hand: datagrams
// come from the server's RTP port to the client's, carry the SSRC of the
// SETUP response, start at a keyframe (SPS) and follow each other in
// sequence; the server writes this reader itself, not through gortsplib.
func TestUDPReaderPortAndSSRC(t *testing.T) {
	var logs testlog.Buffer
	r := startRelay(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}}, nil,
		func(o *rtspserver.Options) { o.Log = zerolog.New(&logs).Level(zerolog.DebugLevel) })
	u := playUDP(t, r.addr, r.url("demo"))
	rtpConn, serverPort, ssrc := u.rtp, u.serverRTP, fmt.Sprintf("%x", u.ssrc)

	_ = rtpConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	var lastSeq uint16
	for i := 0; i < 100; i++ {
		n, from, err := rtpConn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if p := from.(*net.UDPAddr).Port; p != serverPort {
			t.Fatalf("datagram %d from port %d, server_port is %d", i, p, serverPort)
		}
		if n < 13 || buf[0]>>6 != 2 {
			t.Fatalf("datagram %d: %d bytes, not RTP", i, n)
		}
		if got := fmt.Sprintf("%x", binary.BigEndian.Uint32(buf[8:12])); got != ssrc {
			t.Fatalf("datagram %d: ssrc %s, announced %s", i, got, ssrc)
		}
		seq := binary.BigEndian.Uint16(buf[2:4])
		if i == 0 {
			nal := buf[12] & 0x1f
			if nal == 24 && n > 15 { // STAP-A: its first NAL unit
				nal = buf[15] & 0x1f
			}
			if nal != 7 {
				t.Fatalf("first datagram carries NAL %d, want an SPS (7)", nal)
			}
		} else if seq != lastSeq+1 {
			t.Fatalf("datagram %d: seq %d after %d", i, seq, lastSeq)
		}
		lastSeq = seq
	}
	if l := logs.String(); !strings.Contains(l, `"transport":"UDP"`) || !strings.Contains(l, `"direct":true`) {
		t.Fatalf("the UDP reader was not written directly:\n%s", l)
	}
}

// TestSlowReaderGetsWholeFrames reads a 3 MB/s camera through a tiny
// receive buffer and stops reading for 2 s, so the server's writes find
// the socket full part-way through an access unit: every frame must still
// arrive whole and in order, on the announced channel and SSRC, and the
// reader must stay connected.
func TestSlowReaderGetsWholeFrames(t *testing.T) {
	cam := testcam.New(t, func(c *testcam.Camera) { c.FrameSize = 60000 })
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)
	d := net.Dialer{Control: smallReceiveBuffer}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 1024)
	rc := &rawRTSP{t: t, c: c, br: br}
	ssrc := rc.playTCP(r.url("cam"))

	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last uint16
	gaps, reports := 0, 0
	const frames = 6000
	for i := 0; i < frames; i++ {
		if i == 300 {
			// A reader that falls behind by more than the kernel's
			// socket buffers hold (4 MiB here): not a synchronisation.
			time.Sleep(2 * time.Second)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if hdr[0] != '$' {
			t.Fatalf("frame %d starts with %q: the stream is out of frame", i, hdr[:])
		}
		body := make([]byte, int(hdr[2])<<8|int(hdr[3]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if hdr[1] == 1 && len(body) >= 8 && body[1] == 200 { // RTCP sender report
			if got := binary.BigEndian.Uint32(body[4:8]); got != ssrc {
				t.Fatalf("sender report for ssrc %08x, announced %08x", got, ssrc)
			}
			reports++
			i--
			continue
		}
		if hdr[1] != 0 || len(body) < 12 || body[0]>>6 != 2 {
			t.Fatalf("frame %d: channel %d, %d bytes, first byte %#x", i, hdr[1], len(body), body[0])
		}
		if got := binary.BigEndian.Uint32(body[8:12]); got != ssrc {
			t.Fatalf("frame %d: ssrc %08x, announced %08x", i, got, ssrc)
		}
		seq := binary.BigEndian.Uint16(body[2:4])
		if i > 0 && seq != last+1 {
			if int16(seq-last) <= 0 {
				t.Fatalf("frame %d: seq %d after %d (repeated or reordered)", i, seq, last)
			}
			gaps++ // packets lost by a slow reader: allowed, never corrupted
		}
		last = seq
	}
	if info, _ := r.m.Path("cam"); info.Readers != 1 {
		t.Fatalf("readers = %d: the slow reader was dropped", info.Readers)
	}
	if reports == 0 {
		t.Fatal("no RTCP sender report between the frames")
	}
	t.Logf("%d frames read whole, %d gaps, %d sender reports", frames, gaps, reports)
}

// checkSenderReport parses an RTCP packet the relay sent a reader: a
// sender report for ssrc, dated now by the wall clock (RFC 3550 NTP
// format), counting the packets sent before it.
func checkSenderReport(t *testing.T, b []byte, ssrc uint32) *rtcp.SenderReport {
	t.Helper()
	pkts, err := rtcp.Unmarshal(b)
	if err != nil || len(pkts) != 1 {
		t.Fatalf("RTCP from the relay: %v %v", pkts, err)
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok || sr.SSRC != ssrc {
		t.Fatalf("RTCP from the relay: %#v, want a sender report for %08x", pkts[0], ssrc)
	}
	const unixToNTP = 2208988800
	sec := int64(sr.NTPTime>>32) - unixToNTP
	nsec := int64((sr.NTPTime & 0xffffffff) * 1e9 >> 32)
	if d := time.Since(time.Unix(sec, nsec)); d < -time.Second || d > time.Second {
		t.Fatalf("sender report dated %v from now", -d)
	}
	if sr.PacketCount == 0 || sr.OctetCount == 0 {
		t.Fatalf("sender report counts %d packets, %d octets", sr.PacketCount, sr.OctetCount)
	}
	return sr
}

// TestSenderReportsToReaders: readers over TCP (interleaved channel 1)
// and UDP (the client's RTCP port, from the server's) get RTCP sender
// reports soon after PLAY, dated by the wall clock, whose RTP time matches
// the packets around them.
func TestSenderReportsToReaders(t *testing.T) {
	cam := testcam.New(t)
	r := startRelay(t, map[string]streaming.PathConfig{"cam": onDemand(cam.URL())}, nil, nil)

	t.Run("tcp", func(t *testing.T) {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		ssrc := (&rawRTSP{t: t, c: c, br: br}).playTCP(r.url("cam"))
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var lastTS uint32
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				t.Fatalf("no sender report: %v", err)
			}
			body := make([]byte, int(hdr[2])<<8|int(hdr[3]))
			if _, err := io.ReadFull(br, body); err != nil {
				t.Fatal(err)
			}
			if hdr[1] == 0 {
				lastTS = binary.BigEndian.Uint32(body[4:8])
				continue
			}
			sr := checkSenderReport(t, body, ssrc)
			// The camera sends 50 frames a second: the report's RTP time
			// is within a few frames after the last packet's. It may be a
			// little before it: the clock is anchored on a keyframe's
			// arrival, and a keyframe that arrived late makes it lag by
			// that delay (one frame is allowed, 20 ms at 90 kHz).
			if d := int32(sr.RTPTime - lastTS); d < -90000/50 || d > 90000/5 {
				t.Fatalf("sender report RTP time %d, last packet %d", sr.RTPTime, lastTS)
			}
			return
		}
	})

	t.Run("udp", func(t *testing.T) {
		u := playUDP(t, r.addr, r.url("cam"))
		_ = u.rtcp.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		n, from, err := u.rtcp.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no sender report on the RTCP port: %v", err)
		}
		if p := from.(*net.UDPAddr).Port; p != u.serverRTCP {
			t.Fatalf("sender report from port %d, server RTCP port is %d", p, u.serverRTCP)
		}
		checkSenderReport(t, buf[:n], u.ssrc)
	})
}
