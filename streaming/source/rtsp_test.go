package source

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/conn"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
)

// TestRTSPProbe: a port that accepts answers the probe, a closed one does
// not; a URL without a port is probed on RTSP's default port, and the
// error carries no credentials.
func TestRTSPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (&RTSP{URL: "rtsp://u:secret@" + addr + "/s"}).Probe(ctx); err != nil {
		t.Fatalf("open port: %v", err)
	}
	ln.Close()
	err = (&RTSP{URL: "rtsp://u:secret@" + addr + "/s"}).Probe(ctx)
	if err == nil {
		t.Fatal("closed port answered")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("credentials in %v", err)
	}
	for url, port := range map[string]string{"rtsp://127.0.0.1/s": ":554", "rtsps://127.0.0.1/s": ":322"} {
		err := (&RTSP{URL: url}).Probe(ctx)
		if err != nil && !strings.Contains(err.Error(), "127.0.0.1"+port) {
			t.Fatalf("%s probed elsewhere: %v", url, err)
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// playSink counts packets and signals the first 10.
type playSink struct {
	ready   atomic.Bool
	packets atomic.Int64
	got     chan struct{}
}

func newSink() *playSink { return &playSink{got: make(chan struct{})} }

func (s *playSink) Ready(*description.Session) error { s.ready.Store(true); return nil }

func (s *playSink) WriteRTP(*description.Media, format.Format, *rtp.Packet, time.Time) {
	if s.packets.Add(1) == 10 {
		close(s.got)
	}
}

// play runs src until it has delivered 10 packets (nil) or failed.
func play(t *testing.T, src *RTSP) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := newSink()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	select {
	case <-sink.got:
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("source stopped with %v", err)
		}
		return nil
	case err := <-done:
		if err == nil {
			t.Fatal("source ended without error")
		}
		if sink.ready.Load() {
			t.Fatalf("source was ready before it failed: %v", err)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("source neither played nor failed within 10 s")
	}
	return nil
}

// wantRefused checks a refusal that names the certificate's fingerprint.
func wantRefused(t *testing.T, err error, fp string) *CertificateError {
	t.Helper()
	var ce *CertificateError
	if !errors.Is(err, ErrUntrustedCertificate) || !errors.As(err, &ce) {
		t.Fatalf("want an untrusted certificate, got %v", err)
	}
	if ce.Fingerprint != fp || !strings.Contains(err.Error(), "sourceFingerprint: "+fp) {
		t.Fatalf("error does not name the fingerprint %s to pin: %v", fp, err)
	}
	return ce
}

// An rtsps camera with a self-signed certificate: refused without a pin
// (the error names the fingerprint), refused with a wrong pin, played with
// the right one, over SRTP.
func TestRTSPSSelfSigned(t *testing.T) {
	cert := testcam.SelfSigned(t, "127.0.0.1")
	fp := Fingerprint(cert.Leaf)
	cam := testcam.New(t, func(c *testcam.Camera) { c.TLS = testcam.ServerTLS(cert) })

	err := play(t, &RTSP{URL: cam.URL(), Transport: "tcp"})
	if ce := wantRefused(t, err, fp); ce.Pinned != "" || ce.Err == nil {
		t.Fatalf("refusal without a pin: %+v", ce)
	}
	if !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("refusal does not say why: %v", err)
	}

	wrong := strings.Repeat("ab", 32)
	err = play(t, &RTSP{URL: cam.URL(), Transport: "tcp", Fingerprint: wrong})
	if ce := wantRefused(t, err, fp); ce.Pinned != wrong || !strings.Contains(err.Error(), wrong) {
		t.Fatalf("refusal with a wrong pin: %v", err)
	}
	if cam.Sessions() != 0 {
		t.Fatalf("a refused camera got %d sessions", cam.Sessions())
	}

	for _, tr := range []string{"tcp", "automatic"} {
		before := cam.SecureReaders()
		if err := play(t, &RTSP{URL: cam.URL(), Transport: tr, Fingerprint: fp}); err != nil {
			t.Fatalf("%s: pinned camera refused: %v", tr, err)
		}
		if cam.SecureReaders() != before+1 {
			t.Fatalf("%s: the stream was not set up with SRTP", tr)
		}
	}
}

// Without a pin the certificate is verified against RootCAs (the system
// roots by default) and the URL's host.
func TestRTSPSRoots(t *testing.T) {
	ca := testcam.NewCA(t)
	good := testcam.New(t, func(c *testcam.Camera) { c.TLS = testcam.ServerTLS(ca.Issue(t, "127.0.0.1")) })
	if err := play(t, &RTSP{URL: good.URL(), Transport: "tcp", RootCAs: ca.Pool()}); err != nil {
		t.Fatalf("camera with a certificate of a trusted CA refused: %v", err)
	}
	// The same certificate against the system roots.
	cert := ca.Issue(t, "127.0.0.1")
	cam := testcam.New(t, func(c *testcam.Camera) { c.TLS = testcam.ServerTLS(cert) })
	wantRefused(t, play(t, &RTSP{URL: cam.URL(), Transport: "tcp"}), Fingerprint(cert.Leaf))

	// A trusted CA, but a certificate for another host.
	other := ca.Issue(t, "camera.example")
	cam = testcam.New(t, func(c *testcam.Camera) { c.TLS = testcam.ServerTLS(other) })
	err := play(t, &RTSP{URL: cam.URL(), Transport: "tcp", RootCAs: ca.Pool()})
	wantRefused(t, err, Fingerprint(other.Leaf))
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("host mismatch not explained: %v", err)
	}
}

// A password url.Parse refuses is taken up to the last '@' and reaches
// the camera intact; errors never show it.
func TestRTSPHostilePassword(t *testing.T) {
	const pass = `p a/s"<s#?@%`
	cam := testcam.New(t, func(c *testcam.Camera) { c.User, c.Pass = "admin", pass })
	u := strings.Replace(cam.URL(), "rtsp://", "rtsp://admin:"+pass+"@", 1)
	if err := play(t, &RTSP{URL: u, Transport: "tcp"}); err != nil {
		t.Fatalf("camera refused the password: %v", err)
	}
	bad := strings.Replace(cam.URL(), "rtsp://", "rtsp://admin:"+pass+"x@", 1)
	err := play(t, &RTSP{URL: bad, Transport: "tcp"})
	if !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "a/s") {
		t.Fatalf("wrong password: %v", err)
	}
}

// sdesCamera is an rtsps camera that offers SRTP with its keys by SDES
// (a=crypto) instead of MIKEY: written by hand, since gortsplib serves
// only MIKEY. It answers one connection.
func sdesCamera(t *testing.T) (url, fp string) {
	t.Helper()
	cert := testcam.SelfSigned(t, "127.0.0.1")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", testcam.ServerTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	url = "rtsps://" + ln.Addr().String() + "/stream"
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
		"m=video 0 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=control:trackID=0\r\n"
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		c := conn.NewConn(nc)
		for {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			res := &base.Response{StatusCode: base.StatusOK, Header: base.Header{"CSeq": req.Header["CSeq"]}}
			switch req.Method {
			case base.Options:
				res.Header["Public"] = base.HeaderValue{"DESCRIBE, SETUP, PLAY, TEARDOWN"}
			case base.Describe:
				res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
				res.Header["Content-Base"] = base.HeaderValue{url + "/"}
				res.Body = []byte(sdp)
			case base.Setup:
				res.Header["Transport"] = base.HeaderValue{"RTP/SAVP/TCP;unicast;interleaved=0-1"}
				res.Header["Session"] = base.HeaderValue{"12345678"}
			}
			if c.WriteResponse(res) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return url, Fingerprint(cert.Leaf)
}

// A camera whose SRTP keys come by SDES cannot be read by gortsplib
// v4.16.2; the error says so rather than a bare "key-mgmt" complaint.
func TestRTSPSWithSDESKeys(t *testing.T) {
	url, fp := sdesCamera(t)
	err := play(t, &RTSP{URL: url, Transport: "tcp", Fingerprint: fp})
	if !errors.Is(err, ErrSRTPKeyExchange) || !strings.Contains(err.Error(), "SDES") || !strings.Contains(err.Error(), "MIKEY") {
		t.Fatalf("want an SRTP key exchange error, got %v", err)
	}
}

// TestRTSPFaultsInTheLog: a lossy camera that serves TCP only is read;
// the switch to TCP and the lost packets go to the source's structured
// log (losses summed: a line at once, the rest when the source ends),
// nothing to Go's standard logger, where gortsplib prints them by default.
func TestRTSPFaultsInTheLog(t *testing.T) {
	var std testlog.Buffer
	prev := log.Writer()
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(prev) })
	cam := testcam.New(t, func(c *testcam.Camera) { c.DropEvery = 4 })
	var logs testlog.Buffer
	lg := zerolog.New(&logs)
	src := &RTSP{URL: cam.URL(), Log: &lg}
	if err := play(t, src); err != nil {
		t.Fatal(err)
	}
	lost, _ := src.faults.Totals()
	if lost == 0 {
		t.Fatal("no packet counted lost from a camera that leaves out every 4th")
	}
	var logged uint64
	var lines, switches int
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct {
			Level       string `json:"level"`
			Message     string `json:"message"`
			PacketsLost uint64 `json:"packetsLost"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		switch e.Message {
		case "camera stream damaged":
			lines++
			logged += e.PacketsLost
		case "reading the camera over TCP":
			switches++
			if e.Level != "info" {
				t.Fatalf("first switch to TCP logged at %s", e.Level)
			}
		}
	}
	if logged != lost || lines < 1 || lines > 2 {
		t.Fatalf("%d lines say %d packets lost, counted %d:\n%s", lines, logged, lost, logs.String())
	}
	if switches != 1 {
		t.Fatalf("switch to TCP logged %d times:\n%s", switches, logs.String())
	}
	if s := std.String(); s != "" {
		t.Fatalf("printed on the standard logger:\n%.500s", s)
	}
}
