package webrtc

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/ice/v4"
	pwebrtc "github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func readers(m *streaming.Manager, name string) int {
	pi, ok := m.Path(name)
	if !ok {
		return -1
	}
	return pi.Readers
}

func TestWHEPPlaysH264AndAudio(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, true)
	srv := startServer(t, Options{Paths: m, Lister: m})

	c := newClient(t, loopbackAPI(t, true))
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	// Offered: four H.264 profiles, H.265, Opus, PCMU, PCMA. Answered:
	// the one codec each track sends.
	for i, section := range strings.Split(c.body, "\r\nm=")[1:] {
		if n := strings.Count(section, "a=rtpmap:"); n != 1 {
			t.Errorf("answer's media section %d names %d codecs:\nm=%s", i, n, section)
		}
	}
	if !strings.HasPrefix(c.loc, "/cam/whep/") || c.etag == "" {
		t.Fatalf("Location %q ETag %q", c.loc, c.etag)
	}
	if !strings.Contains(c.body, "packetization-mode=1") || !strings.Contains(c.body, "profile-level-id=42") {
		t.Errorf("answer lacks the negotiated H264 profile:\n%s", c.body)
	}
	if strings.Contains(c.body, ".local") {
		t.Errorf("answer has an mDNS candidate:\n%s", c.body)
	}
	if !strings.Contains(c.body, "127.0.0.1 ") {
		t.Errorf("answer lacks the 127.0.0.1 candidate:\n%s", c.body)
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatalf("no IDR within 10 s; NAL types so far %v", c.nalTypes())
	}
	nals := c.nalTypes()
	// Parameter sets must precede the first IDR, although the source never
	// sends them in-band.
	sps, pps, idr := -1, -1, -1
	for i, n := range nals {
		switch {
		case n == 7 && sps < 0:
			sps = i
		case n == 8 && pps < 0:
			pps = i
		case n == 5 && idr < 0:
			idr = i
		}
	}
	if sps < 0 || pps < 0 || idr < 0 || sps > idr || pps > idr {
		t.Fatalf("NAL types %v: want SPS and PPS before the first IDR", nals)
	}
	if nals[0] != 7 {
		t.Errorf("first NAL type = %d, want 7 (a reader starts on the keyframe group)", nals[0])
	}
	waitFor(t, "50 video and 10 audio packets", 10*time.Second, func() bool {
		return c.video.Load() >= 50 && c.audio.Load() >= 10
	})
	if got := readers(m, "cam"); got != 1 {
		t.Errorf("readers = %d, want 1", got)
	}

	res, _ := doRequest(t, http.MethodDelete, srv.base+c.loc, "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", res.StatusCode)
	}
	if got := readers(m, "cam"); got != 0 {
		t.Errorf("readers after DELETE = %d, want 0", got)
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("sessions after DELETE = %d", n)
	}
	res, _ = doRequest(t, http.MethodDelete, srv.base+c.loc, "", "")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", res.StatusCode)
	}
}

func TestDeleteReleasesOnDemandSource(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"demo": {Source: streaming.SourceDemo, SourceOnDemand: true, CloseAfter: 50 * time.Millisecond},
	})
	srv := startServer(t, Options{Paths: m})
	if pi, _ := m.Path("demo"); pi.State != streaming.StateIdle {
		t.Fatalf("state before = %v, want idle", pi.State)
	}
	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "demo")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatalf("no IDR from the demo source; NAL types %v", c.nalTypes())
	}
	if pi, _ := m.Path("demo"); pi.State != streaming.StateReady || pi.Readers != 1 {
		t.Fatalf("while playing: state %v readers %d", pi.State, pi.Readers)
	}
	res, _ := doRequest(t, http.MethodDelete, srv.base+c.loc, "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE = %d", res.StatusCode)
	}
	waitFor(t, "the on-demand source to close", 5*time.Second, func() bool {
		pi, _ := m.Path("demo")
		return pi.State == streaming.StateIdle && pi.Readers == 0
	})
}

func TestHandshakeTimeoutReleasesReader(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m, HandshakeTimeout: 500 * time.Millisecond})

	// The offer is sent but the answer never applied: no ICE checks arrive.
	c := newClient(t, loopbackAPI(t, false))
	body := c.offer()
	res, _ := doRequest(t, http.MethodPost, srv.base+"/cam/whep", "application/sdp", body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST = %d", res.StatusCode)
	}
	if got := readers(m, "cam"); got != 1 {
		t.Fatalf("readers = %d, want 1", got)
	}
	waitFor(t, "the unconnected session to be dropped", 5*time.Second, func() bool {
		return srv.Sessions() == 0 && readers(m, "cam") == 0
	})
}

func TestVanishedPeerIsCleanedUp(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m, ICEDisconnectedTimeout: 300 * time.Millisecond,
		ICEFailedTimeout: 600 * time.Millisecond, ICEKeepalive: 100 * time.Millisecond})

	api, closeSocket := vanishingAPI(t)
	c := newClient(t, api)
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatal("no IDR")
	}
	// The peer disappears without DTLS close or DELETE (cable pulled).
	closeSocket()
	waitFor(t, "ICE failure to end the session", 10*time.Second, func() bool {
		return srv.Sessions() == 0 && readers(m, "cam") == 0
	})
}

func TestRequestErrors(t *testing.T) {
	mjpeg := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.MJPEG{}}}
	m := newManager(t, map[string]streaming.PathConfig{
		"cam":     {Source: streaming.SourcePublisher},
		"bframes": {Source: streaming.SourcePublisher},
		"mjpeg":   {Source: streaming.SourcePublisher},
		"few":     {Source: streaming.SourcePublisher, MaxReaders: 1},
		"secret":  {Source: streaming.SourcePublisher},
	})
	publish(t, m, "cam", spsBaseline, false)
	publish(t, m, "bframes", spsHighBFrames, false)
	publish(t, m, "few", spsBaseline, false)
	publish(t, m, "secret", spsBaseline, false)
	pubMJPEG, err := m.Publish("mjpeg", &description.Session{Medias: []*description.Media{mjpeg}}, streaming.ReaderRequest{}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer pubMJPEG.Close()
	au, err := auth.New([]auth.User{
		{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: "~^(cam|bframes|mjpeg|few|nope)$"}}},
		{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
	}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(au.Close)
	srv := startServer(t, Options{Paths: m, Auth: au})
	api := loopbackAPI(t, false)
	offer := newClient(t, api).offer()

	cases := []struct {
		name, path, ctype, body string
		header                  []string
		want                    int
		contains                string
	}{
		{"malformed sdp", "cam", "application/sdp", "hello", nil, 400, "bad sdp offer"},
		{"no media", "cam", "application/sdp", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", nil, 400, "no audio or video"},
		{"wrong type", "cam", "text/plain", offer, nil, 415, "application/sdp"},
		{"no ice credentials", "cam", "application/sdp", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
			"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
			"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n", nil, 400, "bad sdp offer"},
		{"too large", "cam", "application/sdp", strings.Repeat("a", maxBody+1), nil, 413, "64 KiB"},
		{"unknown path", "nope", "application/sdp", offer, nil, 404, "not found"},
		{"bad path name", "a..b/../c", "application/sdp", offer, nil, 400, "invalid path name"},
		{"mjpeg", "mjpeg", "application/sdp", offer, nil, 406, "M-JPEG"},
		{"b-frames", "bframes", "application/sdp", offer, nil, 406, "b-frames"},
		{"no credentials", "secret", "application/sdp", offer, nil, 401, "authentication"},
		{"wrong password", "secret", "application/sdp", offer, []string{"Authorization", "Basic b3BzOndyb25n"}, 401, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := doRequest(t, http.MethodPost, srv.base+"/"+tc.path+"/whep", tc.ctype, tc.body, tc.header...)
			if res.StatusCode != tc.want || !strings.Contains(body, tc.contains) {
				t.Fatalf("= %d %q, want %d containing %q", res.StatusCode, body, tc.want, tc.contains)
			}
			if tc.want == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("refused requests left %d sessions", n)
	}
	for _, p := range []string{"cam", "bframes", "mjpeg", "few", "secret"} {
		if r := readers(m, p); r != 0 {
			t.Errorf("refused requests left %d readers on %s", r, p)
		}
	}

	t.Run("credentials accepted", func(t *testing.T) {
		for _, h := range []string{"Basic b3BzOnMzY3JldA==", "Bearer ops:s3cret"} {
			c := newClient(t, api)
			c.post(srv.base, "secret", "Authorization", h)
			if c.status != http.StatusCreated {
				t.Fatalf("%s: POST = %d %s", h[:6], c.status, c.body)
			}
		}
	})
	t.Run("maxReaders", func(t *testing.T) {
		c1 := newClient(t, api)
		c1.post(srv.base, "few")
		if c1.status != http.StatusCreated {
			t.Fatalf("first reader: %d %s", c1.status, c1.body)
		}
		c2 := newClient(t, api)
		c2.post(srv.base, "few")
		if c2.status != http.StatusServiceUnavailable || !strings.Contains(c2.body, "too many readers") {
			t.Fatalf("second reader: %d %s", c2.status, c2.body)
		}
	})
	t.Run("cors", func(t *testing.T) {
		res, _ := doRequest(t, http.MethodOptions, srv.base+"/cam/whep", "", "")
		if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
			!strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "Location") {
			t.Fatalf("OPTIONS = %d %v", res.StatusCode, res.Header)
		}
	})
}

// TestWHEPGuessingGets429: after a few wrong passwords an address gets 429
// with Retry-After, even with the right password, while the same user
// from another loopback address (127.0.0.2) gets past authentication.
func TestWHEPGuessingGets429(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"secret": {Source: streaming.SourcePublisher}})
	au, err := auth.New([]auth.User{{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}}}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(au.Close)
	srv := startServer(t, Options{Paths: m, Auth: au})
	basic := func(pass string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+pass)) }
	for i := 0; i < 5; i++ {
		if res, _ := doRequest(t, http.MethodPost, srv.base+"/secret/whep", "application/sdp", "x", "Authorization", basic("guess")); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d = %d, want 401", i, res.StatusCode)
		}
	}
	for _, h := range []string{basic("guess"), basic("s3cret"), "Bearer ops:s3cret"} {
		res, body := doRequest(t, http.MethodPost, srv.base+"/secret/whep", "application/sdp", "x", "Authorization", h)
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s from a throttled address = %d %q (Retry-After %q), want 429 with Retry-After", h[:6], res.StatusCode, body, res.Header.Get("Retry-After"))
		}
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, srv.base+"/secret/whep", strings.NewReader("x"))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", basic("s3cret"))
	res, err := hc.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "assign") {
			t.Skip("127.0.0.2 is not a local address here")
		}
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("right password from 127.0.0.2 = %d, want 400 (past auth, the offer is bad)", res.StatusCode)
	}
}

func TestPatchTrickle(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	srv := startServer(t, Options{Paths: m})
	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d", c.status)
	}
	ufrag := iceUfrag(c.pc.LocalDescription().SDP)
	frag := "a=ice-ufrag:" + ufrag + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	res, body := doRequest(t, http.MethodPatch, srv.base+c.loc, "application/trickle-ice-sdpfrag", frag, "If-Match", c.etag)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH = %d %s", res.StatusCode, body)
	}
	res, _ = doRequest(t, http.MethodPatch, srv.base+c.loc, "application/trickle-ice-sdpfrag", frag, "If-Match", `"other"`)
	if res.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PATCH with a stale ETag = %d, want 412", res.StatusCode)
	}
	restart := strings.Replace(frag, ufrag, "newufrag", 1)
	res, _ = doRequest(t, http.MethodPatch, srv.base+c.loc, "application/trickle-ice-sdpfrag", restart)
	if res.StatusCode != http.StatusNotImplemented {
		t.Errorf("ICE restart PATCH = %d, want 501", res.StatusCode)
	}
	res, _ = doRequest(t, http.MethodPatch, srv.base+"/cam/whep/0000", "application/trickle-ice-sdpfrag", frag)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH unknown session = %d, want 404", res.StatusCode)
	}
}

func TestTwentyConcurrentReaders(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, true)
	srv := startServer(t, Options{Paths: m})
	api := loopbackAPI(t, false)

	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(t, api)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.post(srv.base, "cam")
			if c.status != http.StatusCreated {
				errs <- fmt.Errorf("POST = %d %s", c.status, c.body)
				return
			}
			select {
			case <-c.gotIDR:
			case <-time.After(15 * time.Second):
				errs <- fmt.Errorf("reader got no IDR")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if got := readers(m, "cam"); got != n {
		t.Errorf("readers = %d, want %d", got, n)
	}
	waitFor(t, "every reader to get 25 video packets", 10*time.Second, func() bool {
		for _, c := range clients {
			if c.video.Load() < 25 || c.audio.Load() < 5 {
				return false
			}
		}
		return true
	})
	// Stopping the server closes every peer and releases every reader.
	srv.stop()
	if got := readers(m, "cam"); got != 0 {
		t.Errorf("readers after stop = %d", got)
	}
}

func TestIndexAndPlayerPages(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"demo":        {Source: streaming.SourceDemo, SourceOnDemand: true},
		"yard/gate-1": {Source: streaming.SourcePublisher},
	})
	srv := startServer(t, Options{Paths: m, Lister: m})
	res, body := doRequest(t, http.MethodGet, srv.base+"/", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, `href="/demo"`) || !strings.Contains(body, `href="/yard/gate-1"`) || !strings.Contains(body, "idle") {
		t.Fatalf("index = %d\n%s", res.StatusCode, body)
	}
	res, body = doRequest(t, http.MethodGet, srv.base+"/yard/gate-1", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, `data-path="yard/gate-1"`) || !strings.Contains(body, "RTCPeerConnection") {
		t.Fatalf("player = %d\n%s", res.StatusCode, body)
	}
	if strings.Contains(body, "<script src") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("player page loads something from elsewhere")
	}
	res, _ = doRequest(t, http.MethodGet, srv.base+"/bad%20name", "", "")
	if res.StatusCode != 400 {
		t.Errorf("player for an invalid name = %d", res.StatusCode)
	}
}

func TestBodyReadErrorDoesNotLeak(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	srv := startServer(t, Options{Paths: m})
	// A publisher path with no publisher: 404, nothing acquired.
	c := newClient(t, loopbackAPI(t, false))
	c.post(srv.base, "cam")
	if c.status != http.StatusNotFound || !bytes.Contains([]byte(c.body), []byte("no stream")) {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
}

// TestICETCP plays over the ICE TCP port: the server announces loopback
// (listed explicitly) and the client may use TCP only.
func TestICETCP(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	o := Options{Paths: m, Address: "127.0.0.1:0", ICEUDPMuxAddress: "127.0.0.1:0", ICETCPMuxAddress: "127.0.0.1:0",
		IPsFromInterfaces: true, IPsFromInterfacesList: []string{"lo"}, Logger: testLogger(t)}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	se := pwebrtc.SettingEngine{}
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeTCP4})
	me := &pwebrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(me)))
	c.post("http://"+s.Addr().String(), "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	if !strings.Contains(c.body, " tcp ") || !strings.Contains(c.body, "tcptype passive") {
		t.Fatalf("answer has no passive TCP candidate:\n%s", c.body)
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatal("no IDR over ICE-TCP")
	}
	if ls := s.ListenerStats(); len(ls) != 2 || ls[1].Name != "webrtc-ice-tcp" || ls[1].State.String() != "up" || ls[1].Open != 1 {
		t.Fatalf("listeners %+v", ls)
	}
}

// spsHikvision is a High profile SPS that does not say whether B-frames
// follow (no bitstream restriction): only the timestamps tell.
var spsHikvision = []byte{103, 100, 0, 32, 172, 23, 42, 1, 64, 30, 104, 64, 0, 1, 194, 0, 0, 87, 228, 33}

func TestBFramesNoticedWhilePlaying(t *testing.T) {
	if _, known := h264Reorders(spsHikvision); known {
		t.Fatal("test SPS is expected not to tell about B-frames")
	}
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publishWith(t, m, "cam", spsHikvision, false, bframeOrder)
	srv := startServer(t, Options{Paths: m})
	api := loopbackAPI(t, false)

	c := newClient(t, api)
	c.post(srv.base, "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	waitFor(t, "the session to end on B-frames", 10*time.Second, func() bool {
		return srv.Sessions() == 0 && readers(m, "cam") == 0
	})
	c2 := newClient(t, api)
	c2.post(srv.base, "cam")
	if c2.status != http.StatusNotAcceptable || !strings.Contains(c2.body, "b-frames") {
		t.Fatalf("second POST = %d %s, want 406 naming b-frames", c2.status, c2.body)
	}
}

// TestUnspecifiedUDPMux plays with the ICE socket bound as the default
// config binds it (":port", all addresses, both families) while only
// 127.0.0.1 is announced.
//
// Bound to every address, it runs only in a network namespace holding
// nothing but lo: it re-runs itself under `unshare -n` (root), else skips.
// inLoopbackNamespace reports whether the test runs where every interface
// is a loopback one. Elsewhere it runs the test again inside a network
// namespace of its own with only lo up (unshare -n, as root), reports
// how that went, and returns false: a test that binds all addresses then
// binds only loopback ones.
func inLoopbackNamespace(t *testing.T) bool {
	t.Helper()
	if onlyLoopback(t) {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n: it binds all addresses")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		os.Args[0], "-test.run", strings.Join(pattern, "/"), "-test.count=1", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("inside unshare -n: %v\n%s", err, out)
	}
	return false
}

func TestUnspecifiedUDPMux(t *testing.T) {
	if !inLoopbackNamespace(t) {
		return
	}
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourcePublisher}})
	publish(t, m, "cam", spsBaseline, false)
	s, err := New(Options{Paths: m, Address: "127.0.0.1:0", ICEUDPMuxAddress: ":0",
		AdditionalHosts: []string{"127.0.0.1"}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	c := newClient(t, loopbackAPI(t, false))
	c.post("http://"+s.Addr().String(), "cam")
	if c.status != http.StatusCreated {
		t.Fatalf("POST = %d %s", c.status, c.body)
	}
	for _, l := range strings.Split(c.body, "\n") {
		if strings.HasPrefix(l, "a=candidate:") && !strings.Contains(l, " 127.0.0.1 ") {
			t.Errorf("candidate other than 127.0.0.1: %s", l)
		}
	}
	select {
	case <-c.gotIDR:
	case <-time.After(10 * time.Second):
		t.Fatal("no IDR through the unspecified-address socket")
	}
}

// onlyLoopback says whether every interface of this network namespace is
// a loopback one.
func onlyLoopback(t *testing.T) bool {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}

func TestPagesEscapeWhatTheyShow(t *testing.T) {
	page := renderIndex([]streaming.PathInfo{
		{Name: "yard/gate 1", State: streaming.StateError, LastError: `dial: <script>alert("x")</script> & more`, Readers: 3, Tracks: "H264<1>"},
	}, pageConf{})
	for _, want := range []string{
		`href="/yard/gate%201"`,
		`>yard/gate 1</a>`,
		`class="error">error — dial: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more</td>`,
		`<td>3</td><td>H264&lt;1&gt;</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "{{") {
		t.Errorf("index shows raw text or placeholders:\n%s", page)
	}
	if page := renderIndex(nil, pageConf{}); !strings.Contains(page, "<p>No paths.</p>") || strings.Contains(page, "<table>") {
		t.Errorf("empty index:\n%s", page)
	}
	player := renderPlayer(`a"b<c>`, pageConf{})
	if strings.Contains(player, `a"b<c>`) || !strings.Contains(player, `data-path="a&#34;b&lt;c&gt;"`) || strings.Contains(player, "{{") {
		t.Errorf("player page does not escape the name:\n%s", player)
	}
}
