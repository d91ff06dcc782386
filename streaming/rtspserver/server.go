// Package rtspserver serves paths to RTSP readers (VLC, ffmpeg, GStreamer,
// NVRs) and accepts RTSP publishers, on gortsplib's server.
//
// Readers are fed by the path's Stream, one gortsplib session each, so that
// every reader starts with the cached keyframe group and has its own
// bounded write queue (rtsp.writeQueueSize): a slow reader loses packets
// and then waits for the next keyframe, and never holds up the others.
// rtspserver knows nothing of MQTT, bbolt or the OS.
package rtspserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	gauth "github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/faultlog"
	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// Paths is what the server needs of the path manager.
type Paths interface {
	Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error)
	Publish(name string, desc *description.Session, req streaming.ReaderRequest, onKick func()) (*streaming.Publication, error)
}

// Authorizer decides whether a request is allowed; *auth.Authenticator
// satisfies it. It reports refusals itself (aggregated per source).
type Authorizer interface {
	CheckContext(ctx context.Context, r auth.Request) error
}

// Options configure the server. Zero values take the stated defaults.
type Options struct {
	// Address is the TCP listen address; default ":8554".
	Address string
	// UDP enables the UDP transport on RTPAddress/RTCPAddress.
	UDP         bool
	RTPAddress  string // default ":8000"
	RTCPAddress string // default ":8001"
	// TCP enables the TCP (interleaved) transport; default true when UDP is off.
	TCP bool
	// WriteQueueSize is the packets queued per reader; a power of two,
	// default 2048 (a whole keyframe group of a 4 Mbit/s camera fits).
	WriteQueueSize int
	// BasicOnly makes 401 challenges offer HTTP Basic only. Digest needs the
	// plain password on the server, so it is set when some user's password
	// is stored as a sha256: or argon2: hash; default offers Basic and Digest.
	BasicOnly bool
	// ReadTimeout and WriteTimeout bound client I/O; default 10 s.
	ReadTimeout, WriteTimeout time.Duration
	// HandshakeTimeout bounds each request of a connection that does not
	// play or record yet: from accept, then from each response, the next
	// request must arrive whole within it or the connection is closed;
	// default ReadTimeout.
	HandshakeTimeout time.Duration
	// MaxConns and MaxConnsPerIP cap the open connections, in total and
	// from one client address; the excess is answered 503 and closed at
	// once. 0 = no cap (the agent passes rtsp.maxConnections and
	// rtsp.maxConnectionsPerIP).
	MaxConns, MaxConnsPerIP int
	Log                     zerolog.Logger
	Events                  streaming.EventSink
}

// Server is the local RTSP server.
type Server struct {
	opts  Options
	paths Paths
	auth  Authorizer
	log   zerolog.Logger
	srv   *gortsplib.Server

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	streams map[*streaming.Stream]*gortsplib.ServerStream
	closed  bool

	ln   atomic.Pointer[guard.Listener] // set by Start
	mem  *memReturner
	wg   sync.WaitGroup // readers' writers
	rtp  *udpSocket     // the RTP socket (UDP on), set during Start
	rtcp *udpSocket     // the RTCP socket

	// faults sums what gortsplib reports per packet (loss in a
	// publisher's stream, undecodable RTP/RTCP from any client, writes
	// that failed) into a warning a minute at most, for the whole
	// server: a client sending garbage must not be able to flood the log.
	faults *faultlog.Log
}

// sessionQueue is the size of gortsplib's own write queue per session
// (16 bytes a slot, allocated at PLAY). Readers are written directly with
// queues of their own (directOut, writeQueueSize packets, grown on
// demand); gortsplib's queue carries packets only for a reader whose
// transport the server could not learn from its SETUP responses.
const sessionQueue = 512

// New prepares a server; Run listens.
func New(opts Options, paths Paths, az Authorizer) *Server {
	if opts.Address == "" {
		opts.Address = ":8554"
	}
	if opts.UDP {
		if opts.RTPAddress == "" {
			opts.RTPAddress = ":8000"
		}
		if opts.RTCPAddress == "" {
			opts.RTCPAddress = ":8001"
		}
	}
	if !opts.UDP {
		opts.TCP = true
	}
	if opts.WriteQueueSize <= 0 {
		opts.WriteQueueSize = 2048
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = opts.ReadTimeout
	}
	if opts.Events == nil {
		opts.Events = nopEvents{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		paths:   paths,
		auth:    az,
		log:     opts.Log.With().Str("component", "rtsp").Logger(),
		ctx:     ctx,
		cancel:  cancel,
		streams: map[*streaming.Stream]*gortsplib.ServerStream{},
		mem:     newMemReturner(),
	}
	s.faults = faultlog.New(s.log, "client streams damaged", time.Minute)
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    opts.Address,
		ReadTimeout:    opts.ReadTimeout,
		WriteTimeout:   opts.WriteTimeout,
		WriteQueueSize: min(sessionQueue, opts.WriteQueueSize),
		Listen: func(network, address string) (net.Listener, error) {
			l, err := guard.Listen(network, address, guard.ListenerOptions{
				Name: "rtsp", MaxConns: opts.MaxConns, MaxConnsPerIP: opts.MaxConnsPerIP,
				Busy: guard.RTSPBusy, Log: opts.Log,
			})
			if err != nil {
				return nil, err
			}
			s.ln.Store(l)
			return batchListener{Listener: l, handshake: opts.HandshakeTimeout}, nil
		},
	}
	if opts.BasicOnly {
		s.srv.AuthMethods = []gauth.VerifyMethod{gauth.VerifyMethodBasic}
	}
	if opts.UDP {
		s.srv.UDPRTPAddress = opts.RTPAddress
		s.srv.UDPRTCPAddress = opts.RTCPAddress
		s.srv.ListenPacket = func(network, address string) (net.PacketConn, error) {
			pc, err := net.ListenPacket(network, address)
			if err != nil {
				return nil, err
			}
			// gortsplib reads the clients' packets on them; UDP
			// readers' RTP and sender reports are sent from them
			// directly.
			if u, ok := pc.(*net.UDPConn); ok {
				switch address {
				case opts.RTPAddress:
					s.rtp = newUDPSocket(u)
				case opts.RTCPAddress:
					s.rtcp = newUDPSocket(u)
				}
			}
			return pc, nil
		}
	}
	return s
}

type nopEvents struct{}

func (nopEvents) Event(streaming.Event) {}

// Start listens; the server then runs until Close.
func (s *Server) Start() error {
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("rtsp listen %s: %w", s.opts.Address, err)
	}
	s.log.Info().Str("address", s.opts.Address).Bool("udp", s.opts.UDP).Msg("rtsp server listening")
	return nil
}

// Addr is the TCP address the server listens on (after Start).
func (s *Server) Addr() string { return s.opts.Address }

// ListenerStats are the TCP listener's figures (zero before Start).
func (s *Server) ListenerStats() guard.Stats {
	if l := s.ln.Load(); l != nil {
		return l.Stats()
	}
	return guard.Stats{Name: "rtsp", Addr: s.opts.Address}
}

// Run starts the server and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Serve waits, after Start, until ctx ends (then it closes the server and
// returns nil) or the server ends by itself: its listener failed for
// good. That is an error; the server is closed.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Wait() }()
	select {
	case <-ctx.Done():
		s.Close()
		<-errc
		return nil
	case err := <-errc:
		s.Close()
		if l := s.ln.Load(); l != nil && l.Err() != nil {
			err = l.Err()
		}
		return fmt.Errorf("rtsp server %s ended: %w", s.opts.Address, err)
	}
}

// Close stops the server and disconnects every client.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mem.close()
	streams := s.streams
	s.streams = map[*streaming.Stream]*gortsplib.ServerStream{}
	s.mu.Unlock()
	s.srv.Close()
	for _, st := range streams {
		st.Close()
	}
	s.wg.Wait()
}

// serverStream returns the gortsplib stream describing st to clients. It
// carries no packets itself: each reader session is written directly.
func (s *Server) serverStream(st *streaming.Stream) (*gortsplib.ServerStream, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, streaming.ErrClosed
	}
	if gs, ok := s.streams[st]; ok {
		s.mu.Unlock()
		return gs, nil
	}
	gs := &gortsplib.ServerStream{Server: s.srv, Desc: st.Desc()}
	if err := gs.Initialize(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("initialize server stream: %w", err)
	}
	s.streams[st] = gs
	s.mu.Unlock()
	st.OnClose(func() {
		// Whoever takes gs out of the map closes it: here or Server.Close.
		s.mu.Lock()
		mine := s.streams[st] == gs
		if mine {
			delete(s.streams, st)
		}
		s.mu.Unlock()
		if mine {
			gs.Close()
		}
		s.mem.soon()
	})
	return gs, nil
}

// session is what the server keeps per RTSP session.
type session struct {
	mu     sync.Mutex
	path   string
	lease  *streaming.Lease
	reader *reader
	pub    *streaming.Publication
	// What the SETUP responses told the client; wireOK false: some
	// media's channel, port or SSRC is unknown, the reader goes through
	// the session.
	wire   wire
	wireOK bool
}

func sessionOf(ss *gortsplib.ServerSession) *session {
	if sd, ok := ss.UserData().(*session); ok {
		return sd
	}
	sd := &session{}
	ss.SetUserData(sd)
	return sd
}

func pathName(p string) string {
	return strings.Trim(p, "/")
}

// badName answers a request for a name the path-name rule refuses; it is
// checked before anything is looked up or authorized, and the connection
// is closed after the answer.
func badName(err error) (*base.Response, error) {
	return status(base.StatusBadRequest), err
}

func remoteIP(c *gortsplib.ServerConn) net.IP {
	if a, ok := c.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

func status(code base.StatusCode) *base.Response { return &base.Response{StatusCode: code} }

// authorize returns a response to send when the request is not allowed:
// 401 with a challenge, or 503 with Retry-After when the source is
// throttled or no password check could start in time. A throttled client
// gets 503 rather than 401: its credentials were not checked, and a 401
// would tell the owner of a right password that it is wrong and make
// players answer the challenge again at once; 503 with Retry-After says
// "not now, retry in N s", which is what happened. It tells an attacker
// nothing useful, since the back-off holds whatever he sends. After a
// refusal with credentials the connection is closed.
func (s *Server) authorize(c *gortsplib.ServerConn, req *base.Request, action auth.Action, path string) (*base.Response, error) {
	ar := auth.Request{Action: action, Path: path, IP: remoteIP(c), Proto: "rtsp"}
	if h, ok := req.Header["Authorization"]; ok {
		var a headers.Authorization
		if err := a.Unmarshal(h); err == nil {
			if a.Method == headers.AuthMethodBasic {
				ar.User, ar.Pass = a.Username, a.BasicPass
			} else {
				ar.User = a.Username
				ar.VerifyPlain = func(u, p string) bool { return c.VerifyCredentials(req, u, p) }
			}
		}
	}
	err := s.auth.CheckContext(s.ctx, ar)
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, auth.ErrThrottled), errors.Is(err, auth.ErrBusy):
		res := status(base.StatusServiceUnavailable)
		res.Header = base.Header{"Retry-After": base.HeaderValue{strconv.Itoa(auth.RetryAfterSeconds(err))}}
		return res, fmt.Errorf("rtsp %s %q: %w", action, path, err)
	}
	// Makes gortsplib prepare the nonce of its WWW-Authenticate challenge.
	c.VerifyCredentials(req, "camgate", "\x00")
	return status(base.StatusUnauthorized), liberrors.ErrServerAuth{}
}

// acquireError maps path errors to RTSP answers.
func (s *Server) acquireError(path string, err error) (*base.Response, error) {
	code := base.StatusNotFound
	switch {
	case errors.Is(err, streaming.ErrTooManyReaders), errors.Is(err, streaming.ErrClosed):
		code = base.StatusServiceUnavailable
	case errors.Is(err, streaming.ErrStartTimeout):
		s.log.Warn().Str("path", path).Str("error", redact.Error(err)).Msg("source did not start")
	}
	return status(code), fmt.Errorf("path %q: %w", path, redact.Err(err))
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	name := pathName(ctx.Path)
	if err := guard.ValidatePathName(name); err != nil {
		res, err := badName(err)
		return res, nil, err
	}
	if res, err := s.authorize(ctx.Conn, ctx.Request, auth.ActionRead, name); res != nil {
		return res, nil, err
	}
	lease, err := s.paths.Acquire(s.ctx, name, streaming.ReaderRequest{Protocol: "rtsp", RemoteAddr: ctx.Conn.NetConn().RemoteAddr()})
	if err != nil {
		res, err := s.acquireError(name, err)
		return res, nil, err
	}
	// The on-demand close-after delay keeps the source up until SETUP.
	defer lease.Release()
	gs, err := s.serverStream(lease.Stream())
	if err != nil {
		return status(base.StatusServiceUnavailable), nil, err
	}
	return status(base.StatusOK), gs, nil
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	name := pathName(ctx.Path)
	if err := guard.ValidatePathName(name); err != nil {
		return badName(err)
	}
	if res, err := s.authorize(ctx.Conn, ctx.Request, auth.ActionPublish, name); res != nil {
		return res, err
	}
	ss := ctx.Session
	pub, err := s.paths.Publish(name, ctx.Description,
		streaming.ReaderRequest{Protocol: "rtsp", RemoteAddr: ctx.Conn.NetConn().RemoteAddr()},
		ss.Close)
	switch {
	case err == nil:
	case errors.Is(err, streaming.ErrPathNotFound):
		return status(base.StatusNotFound), fmt.Errorf("publish %q: %w", name, err)
	default:
		return status(base.StatusBadRequest), fmt.Errorf("publish %q: %w", name, err)
	}
	sd := sessionOf(ss)
	sd.mu.Lock()
	sd.path, sd.pub = name, pub
	sd.mu.Unlock()
	return status(base.StatusOK), nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return status(base.StatusOK), nil, nil
	}
	name := pathName(ctx.Path)
	if err := guard.ValidatePathName(name); err != nil {
		res, err := badName(err)
		return res, nil, err
	}
	sd := sessionOf(ctx.Session)
	sd.mu.Lock()
	lease := sd.lease
	sd.mu.Unlock()
	if lease == nil {
		if res, err := s.authorize(ctx.Conn, ctx.Request, auth.ActionRead, name); res != nil {
			return res, nil, err
		}
		l, err := s.paths.Acquire(s.ctx, name, streaming.ReaderRequest{Protocol: "rtsp", RemoteAddr: ctx.Conn.NetConn().RemoteAddr()})
		if err != nil {
			res, err := s.acquireError(name, err)
			return res, nil, err
		}
		sd.mu.Lock()
		sd.path, sd.lease = name, l
		sd.mu.Unlock()
		lease = l
	} else if name != sd.path {
		return status(base.StatusBadRequest), nil, fmt.Errorf("setup of %q in a session reading %q", name, sd.path)
	}
	gs, err := s.serverStream(lease.Stream())
	if err != nil {
		return status(base.StatusServiceUnavailable), nil, err
	}
	if bc, ok := ctx.Conn.NetConn().(*batchConn); ok {
		// OnResponse learns the channel and SSRC of this media.
		bc.reqMu.Lock()
		bc.reqSession, bc.reqSS, bc.reqMedias = sd, ctx.Session, len(ctx.Session.SetuppedMedias())
		bc.reqMu.Unlock()
	}
	return status(base.StatusOK), gs, nil
}

// OnRequest implements gortsplib.ServerHandlerOnRequest.
func (s *Server) OnRequest(c *gortsplib.ServerConn, req *base.Request) {
	if bc, ok := c.NetConn().(*batchConn); ok {
		bc.reqMu.Lock()
		bc.reqMethod, bc.reqSession, bc.reqSS = req.Method, nil, nil
		bc.reqMu.Unlock()
	}
}

// OnResponse implements gortsplib.ServerHandlerOnResponse. It is called
// before the response is written.
func (s *Server) OnResponse(c *gortsplib.ServerConn, res *base.Response) {
	bc, ok := c.NetConn().(*batchConn)
	if !ok {
		return
	}
	bc.reqMu.Lock()
	method, sd, ss, before := bc.reqMethod, bc.reqSession, bc.reqSS, bc.reqMedias
	bc.reqSession, bc.reqSS = nil, nil
	bc.reqMu.Unlock()
	bc.answered(method, res.StatusCode, s.opts.HandshakeTimeout)
	if sd == nil {
		return
	}
	switch method {
	case base.Setup:
		sd.mu.Lock()
		defer sd.mu.Unlock()
		if sd.lease == nil {
			return
		}
		if res.StatusCode != base.StatusOK {
			return
		}
		medias := sd.lease.Stream().Desc().Medias
		if sd.wire.channel == nil {
			sd.wire = newWire(len(medias))
			sd.wireOK = true
		}
		set := ss.SetuppedMedias()
		var th headers.Transport
		if len(set) != before+1 || th.Unmarshal(res.Header["Transport"]) != nil || th.Secure || th.SSRC == nil {
			sd.wireOK = false
			return
		}
		channel, rtcpChannel, port, rtcpPort := -1, -1, 0, 0
		switch {
		case th.Protocol == headers.TransportProtocolTCP && th.InterleavedIDs != nil &&
			th.InterleavedIDs[0] >= 0 && th.InterleavedIDs[0] <= 255 && th.InterleavedIDs[1] >= 0 && th.InterleavedIDs[1] <= 255:
			channel, rtcpChannel = th.InterleavedIDs[0], th.InterleavedIDs[1]
		case th.Protocol == headers.TransportProtocolUDP && s.rtp != nil && th.ClientPorts != nil &&
			(th.Delivery == nil || *th.Delivery == headers.TransportDeliveryUnicast) &&
			th.ClientPorts[0] > 0 && th.ClientPorts[0] < 65536:
			port, rtcpPort = th.ClientPorts[0], th.ClientPorts[1]
		default:
			sd.wireOK = false
			return
		}
		for i, m := range medias {
			if m == set[before] {
				sd.wire.channel[i], sd.wire.rtcpChannel[i], sd.wire.port[i], sd.wire.rtcpPort[i], sd.wire.ssrc[i] =
					channel, rtcpChannel, port, rtcpPort, *th.SSRC
				return
			}
		}
		sd.wireOK = false
	case base.Play:
		sd.mu.Lock()
		r := sd.reader
		sd.mu.Unlock()
		if res.StatusCode == base.StatusOK && r != nil && r.out != nil {
			// RTP goes out only after the PLAY response.
			bc.onNextWrite(r.out.begin)
		}
	}
}

// directOutFor returns a writer of its own for a TCP or UDP reader whose
// channels or ports and SSRCs are known, or nil; sd.mu is held.
func (s *Server) directOutFor(ctx *gortsplib.ServerHandlerOnPlayCtx, sd *session, st *streaming.Stream) *directOut {
	bc, ok := ctx.Conn.NetConn().(*batchConn)
	if !ok || !sd.wireOK {
		return nil
	}
	tr := ctx.Session.SetuppedTransport()
	if tr == nil || (*tr != gortsplib.TransportTCP && (*tr != gortsplib.TransportUDP || s.rtp == nil)) {
		return nil
	}
	udp := *tr == gortsplib.TransportUDP
	var ip netip.Addr
	if udp {
		// gortsplib sends to the address of the connection that did
		// SETUP, at the client's RTP port; so do we.
		a, ok := bc.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return nil
		}
		ip, _ = netip.AddrFromSlice(a.IP)
		ip = ip.Unmap().WithZone(a.Zone)
	}
	medias := st.Desc().Medias
	for _, sm := range ctx.Session.SetuppedMedias() {
		found := false
		for i, m := range medias {
			if m == sm && ((!udp && sd.wire.channel[i] >= 0) || (udp && sd.wire.port[i] > 0)) {
				found = true
			}
		}
		if !found {
			return nil
		}
	}
	out := newDirectOut(streaming.NewQueue(s.opts.WriteQueueSize), sd.wire.clone(), ctx.Session, ctx.Conn, st, s.opts.WriteTimeout)
	if udp {
		out.udp, out.rtcp = s.rtp, s.rtcp
		out.addrs = make([]netip.AddrPort, len(medias))
		out.rtcpAddrs = make([]netip.AddrPort, len(medias))
		out.dests = make([]udpDest, len(medias))
		for i, port := range out.wire.port {
			if port > 0 {
				out.addrs[i] = netip.AddrPortFrom(ip, uint16(port))
				out.dests[i] = makeUDPDest(s.rtp.family, out.addrs[i])
			}
			if p := out.wire.rtcpPort[i]; port > 0 && p > 0 && p < 65536 {
				out.rtcpAddrs[i] = netip.AddrPortFrom(ip, uint16(p))
			}
		}
	} else {
		out.conn = bc
	}
	return out
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	sd := sessionOf(ctx.Session)
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if sd.lease == nil {
		return status(base.StatusBadRequest), errors.New("play without setup")
	}
	if sd.reader != nil {
		// A repeated PLAY: still attached.
		return status(base.StatusOK), nil
	}
	st := sd.lease.Stream()
	r := newReader(ctx.Session, ctx.Conn, st, ctx.Session.SetuppedMedias(), s.opts.WriteTimeout)
	if out := s.directOutFor(ctx, sd, st); out != nil {
		r.out = out
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			out.run()
		}()
		if bc, ok := ctx.Conn.NetConn().(*batchConn); ok {
			bc.reqMu.Lock()
			bc.reqSession = sd
			bc.reqMu.Unlock()
		}
	}
	sd.reader = r
	// The session's write queue exists during OnPlay; packets written now
	// (the cached keyframe group) go out right after the PLAY response.
	st.AddReader(r)
	s.log.Debug().Str("path", sd.path).Str("remote", ctx.Conn.NetConn().RemoteAddr().String()).
		Str("transport", fmt.Sprint(ctx.Session.SetuppedTransport())).Bool("direct", r.out != nil).Msg("reader started")
	return status(base.StatusOK), nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	sd := sessionOf(ctx.Session)
	sd.mu.Lock()
	pub := sd.pub
	sd.mu.Unlock()
	if pub == nil {
		return status(base.StatusBadRequest), errors.New("record without announce")
	}
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, forma format.Format, pkt *rtp.Packet) {
		pub.WriteRTP(medi, forma, pkt, time.Now())
	})
	return status(base.StatusOK), nil
}

// OnPause implements gortsplib.ServerHandlerOnPause.
// A paused reader is detached from its stream; PLAY attaches a new one,
// which starts again at a keyframe.
func (s *Server) OnPause(ctx *gortsplib.ServerHandlerOnPauseCtx) (*base.Response, error) {
	sd, ok := ctx.Session.UserData().(*session)
	if !ok {
		return status(base.StatusOK), nil
	}
	sd.mu.Lock()
	lease, r := sd.lease, sd.reader
	sd.reader = nil
	sd.mu.Unlock()
	if r != nil && lease != nil {
		lease.Stream().RemoveReader(r)
		r.release()
	}
	return status(base.StatusOK), nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	sd, ok := ctx.Session.UserData().(*session)
	if !ok {
		return
	}
	sd.mu.Lock()
	lease, r, pub := sd.lease, sd.reader, sd.pub
	sd.lease, sd.reader, sd.pub = nil, nil, nil
	sd.mu.Unlock()
	if r != nil {
		// Detached: the stream no longer calls r, so its held packets
		// can go.
		lease.Stream().RemoveReader(r)
		r.release()
		if lease.Stream().Readers() == 0 {
			s.mem.soon()
		}
		s.log.Debug().Str("path", sd.path).Uint64("dropped", r.dropped).Msg("reader gone")
	}
	if lease != nil {
		lease.Release()
	}
	if pub != nil {
		pub.Close()
	}
}

// Faults are the RTP packets missing from publishers' streams and the
// RTP/RTCP packets from clients that did not decode, since New.
func (s *Server) Faults() (lost, undecodable uint64) { return s.faults.Totals() }

// faultFrom names a session for the fault log: its path.
func faultFrom(ss *gortsplib.ServerSession) string {
	if sd, ok := ss.UserData().(*session); ok {
		sd.mu.Lock()
		defer sd.mu.Unlock()
		return sd.path
	}
	return ""
}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost: packets
// missing from a publisher's stream.
func (s *Server) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	s.faults.Lost(ctx.Lost, faultFrom(ctx.Session))
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError: an RTP
// or RTCP packet from a client that does not decode.
func (s *Server) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	s.faults.Undecodable(ctx.Error, faultFrom(ctx.Session))
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// a packet gortsplib could not queue for a reader it writes itself.
func (s *Server) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	s.faults.Unsent(ctx.Error, faultFrom(ctx.Session))
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (s *Server) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	if e := s.log.Debug(); e.Enabled() {
		e.Str("remote", ctx.Conn.NetConn().RemoteAddr().String()).Msg("conn opened")
	}
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (s *Server) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	if e := s.log.Debug(); e.Enabled() {
		e.Str("remote", ctx.Conn.NetConn().RemoteAddr().String()).Str("error", redact.Error(ctx.Error)).Msg("conn closed")
	}
}
