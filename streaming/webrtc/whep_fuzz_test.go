package webrtc

import (
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/streaming"
)

// whepPaths are the paths an offer goes to: H.264 with audio (a running
// publisher), H.264 alone, H.265 alone (publications without packets are
// enough to negotiate) and a path that does not exist.
var whepPaths = []string{"cam", "vonly", "hevc", "nope"}

type whepFuzz struct {
	m   *streaming.Manager
	srv *testServer
}

func newWHEPFuzz(tb testing.TB) *whepFuzz {
	tb.Helper()
	m := newManager(tb, map[string]streaming.PathConfig{
		"cam":   {Source: streaming.SourcePublisher},
		"vonly": {Source: streaming.SourcePublisher},
		"hevc":  {Source: streaming.SourcePublisher},
	})
	publish(tb, m, "cam", spsBaseline, true)
	h264 := &format.H264{PayloadTyp: 96, SPS: spsBaseline, PPS: testPPS, PacketizationMode: 1}
	h265 := &format.H265{PayloadTyp: 96, VPS: []byte{0x40, 0x01, 0x0c}, SPS: []byte{0x42, 0x01, 0x01}, PPS: []byte{0x44, 0x01, 0xc0}}
	for name, f := range map[string]format.Format{"vonly": h264, "hevc": h265} {
		desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}}
		pub, err := m.Publish(name, desc, streaming.ReaderRequest{Protocol: "test"}, func() {})
		if err != nil {
			tb.Fatalf("publish %s: %v", name, err)
		}
		tb.Cleanup(pub.Close)
	}
	z := &whepFuzz{m: m, srv: startServer(tb, Options{Paths: m, GatherTimeout: 500 * time.Millisecond})}
	// The first session builds the pion engine and its ICE socket reader,
	// which then serve every later session: not a request's goroutines.
	real, _ := realOffers(tb)
	res, body := doRequest(tb, http.MethodPost, z.srv.base+"/cam/whep", "application/sdp", real)
	if res.StatusCode != http.StatusCreated {
		tb.Fatalf("warm-up POST = %d: %s", res.StatusCode, body)
	}
	doRequest(tb, http.MethodDelete, z.srv.base+res.Header.Get("Location"), "", "")
	return z
}

// post sends offer to path's WHEP endpoint and checks the outcome: 201
// (then DELETE releases the session) or a 4xx, never a 5xx; afterwards
// no session and no reader is left, and every goroutine the request
// started is gone within 5 s.
func (z *whepFuzz) post(t *testing.T, path, offer string) int {
	t.Helper()
	others := goleak.IgnoreCurrent()
	res, body := doRequest(t, http.MethodPost, z.srv.base+"/"+path+"/whep", "application/sdp", offer)
	switch {
	case res.StatusCode == http.StatusCreated:
		loc := res.Header.Get("Location")
		if loc == "" {
			t.Fatal("201 without a Location")
		}
		if del, _ := doRequest(t, http.MethodDelete, z.srv.base+loc, "", ""); del.StatusCode != http.StatusOK {
			t.Fatalf("DELETE %s = %d", loc, del.StatusCode)
		}
	case res.StatusCode >= 400 && res.StatusCode < 500:
	default:
		t.Fatalf("POST = %d, want 201 or 4xx: %s", res.StatusCode, body)
	}
	if n := z.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	if r := readers(z.m, path); r > 0 {
		t.Fatalf("%d readers left on %s", r, path)
	}
	// The HTTP client keeps its idle connection (and the server its
	// goroutine for it): those two are not the request's.
	http.DefaultClient.CloseIdleConnections()
	if err := findLeaks(others, 5*time.Second); err != nil {
		t.Fatalf("after the request: %v", err)
	}
	return res.StatusCode
}

// findLeaks waits up to d for every goroutine started since others was
// taken to end. The fuzzing worker's own signal watcher comes and goes.
func findLeaks(others goleak.Option, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(others, goleak.IgnoreAnyFunction("os/signal.NotifyContext.func1"))
		if err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// realOffers are pion's offers without and with H.265; the peer
// connections that made them are closed, so their goroutines do not count
// as the server's.
func realOffers(tb testing.TB) (h264, hevc string) {
	tb.Helper()
	c := newClient(tb, loopbackAPI(tb, false))
	h264 = c.offer()
	c.close()
	c = newClient(tb, loopbackAPI(tb, true))
	hevc = c.offer()
	c.close()
	return h264, hevc
}

func TestWHEPOffers(t *testing.T) {
	z := newWHEPFuzz(t)
	real, realHEVC := realOffers(t)
	for _, c := range []struct {
		path, offer string
		want        int
	}{
		{"cam", real, http.StatusCreated},
		{"vonly", real, http.StatusCreated},
		{"hevc", realHEVC, http.StatusCreated},
		{"hevc", real, http.StatusNotAcceptable}, // no H.265 offered
		{"nope", real, http.StatusNotFound},
		// Found by FuzzWHEPOffer: a codec camgate's offer parser takes
		// but pion does not match (here: no clock rate) made the answer
		// fail with a 500.
		{"cam", "v=\no= 3 1 IN\ns=\nt=\na=fingerprint: \nm=video 9 AVP 105\na=mid:0\na=ice-ufrag:U\na=ice-pwd: \n" +
			"a=rtpmap:105 H264\na=fmtp:105 packetization-mode=1;\nm=audio 9 UDP/TLS/RTP/AVP 8\nc=IN IP4 \na=mid:1\na=rtpmap: PCMU/\n", http.StatusNotAcceptable},
		{"cam", offerCases[0].sdp, http.StatusBadRequest},
		{"cam", offerCases[3].sdp, http.StatusBadRequest}, // parses, but pion refuses it (no ICE or DTLS)
	} {
		if got := z.post(t, c.path, c.offer); got != c.want {
			t.Errorf("%s: POST = %d, want %d", c.path, got, c.want)
		}
	}
}

// FuzzWHEPOffer posts arbitrary offers to each path (which picks one).
func FuzzWHEPOffer(f *testing.F) {
	z := newWHEPFuzz(f)
	real, realHEVC := realOffers(f)
	for i := range whepPaths {
		f.Add(uint8(i), real)
		f.Add(uint8(i), realHEVC)
		for _, c := range offerCases {
			f.Add(uint8(i), c.sdp)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, offer string) {
		path := whepPaths[int(which)%len(whepPaths)]
		if got := z.post(t, path, offer); got == http.StatusCreated && path == "nope" {
			t.Fatal("201 for a path that does not exist")
		}
	})
}
