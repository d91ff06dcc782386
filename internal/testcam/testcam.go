// Package testcam provides simulated RTSP cameras for tests: a real
// gortsplib server on 127.0.0.1 sending an H.264 stream (a keyframe every
// GOP frames), with controls to stop, restart, go silent and count clients.
// With TLS set it is an RTSPS camera, which gortsplib serves with SRTP
// (RTP/SAVP, keys by MIKEY).
package testcam

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Fake parameter sets of a 64x64 baseline stream; decoders are not involved.
var (
	SPS = []byte{0x67, 0x42, 0xc0, 0x0a, 0xd9, 0x1e, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x48, 0x99, 0x20}
	PPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// Camera is a simulated RTSP camera serving one H.264 track at /stream.
type Camera struct {
	// FPS is frames per second; default 50.
	FPS int
	// GOP is frames per keyframe group; default 25.
	GOP int
	// FrameSize is the payload bytes of a non-IDR frame; an IDR is 4x.
	FrameSize int
	// TLS, when set, makes the camera serve rtsps:// only.
	TLS *tls.Config
	// User and Pass, when User is set, are required (Basic or Digest).
	User, Pass string
	// DropEvery, when set, leaves out every DropEvery-th RTP packet (its
	// sequence number is skipped): a lossy camera.
	DropEvery int

	addr string

	mu       sync.Mutex
	srv      *gortsplib.Server
	stream   *gortsplib.ServerStream
	stop     chan struct{}
	done     chan struct{}
	silent   atomic.Bool
	frame    int
	readers  atomic.Int32
	describe atomic.Int32
	sessions atomic.Int32
	secure   atomic.Int32
}

// New starts a camera on a free 127.0.0.1 port; it stops at test cleanup.
// opts may change FPS, GOP and FrameSize before it starts.
func New(t testing.TB, opts ...func(*Camera)) *Camera {
	t.Helper()
	c, err := Open(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// URL is the camera's stream URL: rtsps:// when TLS is set.
func (c *Camera) URL() string {
	if c.TLS != nil {
		return "rtsps://" + c.addr + "/stream"
	}
	return "rtsp://" + c.addr + "/stream"
}

// SecureReaders counts PLAY requests of sessions set up with SRTP.
func (c *Camera) SecureReaders() int { return int(c.secure.Load()) }

// Open starts a camera on a free 127.0.0.1 port for programs that are not
// tests (the soak harness); the caller stops it.
func Open(opts ...func(*Camera)) (*Camera, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	c := &Camera{addr: addr, FPS: 50, GOP: 25, FrameSize: 600}
	for _, o := range opts {
		o(c)
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Addr is host:port.
func (c *Camera) Addr() string { return c.addr }

// Describes counts DESCRIBE requests served.
func (c *Camera) Describes() int { return int(c.describe.Load()) }

// Readers is the number of playing sessions now.
func (c *Camera) Readers() int { return int(c.readers.Load()) }

// Sessions counts sessions ever opened.
func (c *Camera) Sessions() int { return int(c.sessions.Load()) }

// Silence stops (true) or resumes (false) sending packets while keeping
// sessions open.
func (c *Camera) Silence(v bool) { c.silent.Store(v) }

// Start (re)starts the server on the same address.
func (c *Camera) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return errors.New("already running")
	}
	h := &handler{c: c}
	srv := &gortsplib.Server{Handler: h, RTSPAddress: c.addr, TLSConfig: c.TLS}
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after a stop
		if err = srv.Start(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	forma := &format.H264{PayloadTyp: 96, SPS: SPS, PPS: PPS, PacketizationMode: 1}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	st := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		srv.Close()
		return err
	}
	h.stream.Store(st)
	c.srv, c.stream = srv, st
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.run(st, forma, c.stop, c.done)
	return nil
}

// Stop closes the server and every session.
func (c *Camera) Stop() {
	c.mu.Lock()
	srv, st, stop, done := c.srv, c.stream, c.stop, c.done
	c.srv, c.stream = nil, nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	<-done
	st.Close()
	srv.Close()
	c.readers.Store(0)
}

func (c *Camera) run(st *gortsplib.ServerStream, forma *format.H264, stop, done chan struct{}) {
	defer close(done)
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		panic(err)
	}
	fps := c.FPS
	tick := time.NewTicker(time.Second / time.Duration(fps))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if c.silent.Load() {
			continue
		}
		n := c.frame
		c.frame++
		var au [][]byte
		if n%c.GOP == 0 {
			idr := make([]byte, c.FrameSize*4)
			idr[0] = 0x65
			au = [][]byte{SPS, PPS, idr}
		} else {
			p := make([]byte, c.FrameSize)
			p[0] = 0x41
			au = [][]byte{p}
		}
		pkts, err := enc.Encode(au)
		if err != nil {
			panic(err)
		}
		ts := uint32(n * 90000 / fps)
		for _, p := range pkts {
			p.Timestamp = ts
			if c.DropEvery > 0 && p.SequenceNumber%uint16(c.DropEvery) == 0 {
				continue
			}
			_ = st.WritePacketRTP(st.Desc.Medias[0], p)
		}
	}
}

// handler serves the camera's stream; the stream is created after the
// server starts, so requests arriving in between get 503.
type handler struct {
	c      *Camera
	stream atomic.Pointer[gortsplib.ServerStream]
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if u := h.c.User; u != "" && !ctx.Conn.VerifyCredentials(ctx.Request, u, h.c.Pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	st := h.stream.Load()
	if st == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	h.c.describe.Add(1)
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if u := h.c.User; u != "" && !ctx.Conn.VerifyCredentials(ctx.Request, u, h.c.Pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	st := h.stream.Load()
	if st == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.c.readers.Add(1)
	if ctx.Session.SetuppedSecure() {
		h.c.secure.Add(1)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnSessionOpen(*gortsplib.ServerHandlerOnSessionOpenCtx) { h.c.sessions.Add(1) }

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePlay {
		h.c.readers.Add(-1)
	}
}

// BlackHole listens on 127.0.0.1 and accepts connections without ever
// answering: a camera that hangs. It closes at test cleanup.
func BlackHole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "rtsp://" + l.Addr().String() + "/stream"
}
