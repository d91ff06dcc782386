package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// Paths is the streaming core as the server uses it; *streaming.Manager
// satisfies it. Acquire starts an on-demand source and waits for it.
type Paths interface {
	Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error)
}

// PathLister lists paths for the index page; *streaming.Manager satisfies it.
type PathLister interface {
	Paths() []streaming.PathInfo
}

// Authenticator checks a request; *auth.Authenticator satisfies it and
// reports refusals itself. auth.ErrThrottled means 429 and auth.ErrBusy
// 503, both with Retry-After; any other error 401, so the player asks for
// (other) credentials. Permits decides what the index and the console
// show: a permission the client lacks is not a failed login there.
type Authenticator interface {
	CheckContext(ctx context.Context, r auth.Request) error
	Permits(ctx context.Context, r auth.Request) (bool, error)
}

// maxBody bounds WHEP request bodies.
const maxBody = 64 << 10

// Server is the WHEP server and player page.
type Server struct {
	o    Options
	log  zerolog.Logger
	ice  *iceStack
	http *guard.HTTPServer

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run
	sessions map[string]*session
	closed   bool
	bframes  map[string]string // path -> SPS seen with B-frames
	pending  int               // offers being answered and sessions not connected yet
	wg       sync.WaitGroup    // session goroutines

	pendingRefused atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// New binds the HTTP and ICE sockets and checks the ICE settings; the
// pion API is built by the first session. Run serves; a Server that is
// never Run must be Closed.
func New(o Options) (*Server, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		o:        o,
		log:      o.Logger.With().Str("component", "webrtc").Logger(),
		sessions: map[string]*session{},
		bframes:  map[string]string{},
	}
	var err error
	s.ice, err = newICEStack(&s.o, s.log)
	if err != nil {
		return nil, err
	}
	// The server has no WriteTimeout: an offer may wait for an on-demand
	// source. ServeHTTP sets a write deadline per response instead. The
	// ICE-TCP listener going down ends Run as the HTTP one does.
	s.http, err = guard.ListenHTTP(o.Address, s, guard.HTTPOptions{
		Listener:          guard.ListenerOptions{Name: "webrtc", MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Log: o.Logger},
		ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes,
		Watch: s.ice.tcpLn,
	})
	if err != nil {
		_ = s.ice.close()
		return nil, fmt.Errorf("listen webrtc http %s: %w", o.Address, err)
	}
	return s, nil
}

// ListenerStats are the figures of the HTTP listener and, when set, of
// the ICE-TCP one.
func (s *Server) ListenerStats() []guard.Stats {
	out := []guard.Stats{s.http.Stats()}
	if s.ice.tcpLn != nil {
		out = append(out, s.ice.tcpLn.Stats())
	}
	return out
}

// PendingStats returns the offers being answered plus the sessions not
// connected yet, and how many offers MaxPendingSessions refused.
func (s *Server) PendingStats() (pending int, refused uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending, s.pendingRefused.Load()
}

// reservePending takes a place among the pending sessions; false: none
// is free.
func (s *Server) reservePending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.MaxPendingSessions > 0 && s.pending >= s.o.MaxPendingSessions {
		s.pendingRefused.Add(1)
		return false
	}
	s.pending++
	return true
}

func (s *Server) releasePending() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
}

// SendDropped is how many WebRTC datagrams were lost in batched sends:
// refused by the kernel, or still waiting for a full socket at the write
// deadline. Like a network's losses, they do not end the session; the
// reader's NACKs recover from them.
func (s *Server) SendDropped() uint64 { return s.ice.batch.droppedCount() }

// Addr is the HTTP address the server listens on.
func (s *Server) Addr() net.Addr { return s.http.Addr() }

// ICEUDPAddr is the ICE UDP socket's address.
func (s *Server) ICEUDPAddr() net.Addr { return s.ice.udpConn.LocalAddr() }

// Sessions is the number of live WHEP sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Run serves until ctx ends, then closes every session and socket and
// waits for every goroutine. It returns nil on a clean stop, an error when
// the HTTP or the ICE-TCP listener went down.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.log.Info().Str("address", s.http.Addr().String()).Str("iceUDP", s.ICEUDPAddr().String()).Msg("webrtc server listening")
	// Stopping ends waiting requests and every session.
	err := s.http.Serve(ctx, cancel)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops every session and releases the sockets; Run calls it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, ss := range s.sessions {
			ss.stop(ErrServerClosed)
		}
		s.mu.Unlock()
		s.wg.Wait()
		_ = s.http.Close()
		s.closeErr = s.ice.close()
	})
	return s.closeErr
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.id)
	s.mu.Unlock()
}

func (s *Server) markBFrames(path string, f format.Format) {
	if h, ok := f.(*format.H264); ok {
		sps, _ := h.SafeParams()
		s.mu.Lock()
		s.bframes[path] = string(sps)
		s.mu.Unlock()
	}
}

func (s *Server) knownBFrames(path string, f format.Format) bool {
	h, ok := f.(*format.H264)
	if !ok {
		return false
	}
	sps, _ := h.SafeParams()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen, ok := s.bframes[path]
	return ok && seen == string(sps)
}

// ServeHTTP routes: GET / (index), GET /<path> (player), POST /<path>/whep,
// PATCH and DELETE /<path>/whep/<session>, OPTIONS anywhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", s.o.AllowOrigin)
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Accept-Patch, Link, WWW-Authenticate")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "OPTIONS, GET, POST, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, X-Requested-With")
		h.Set("Access-Control-Max-Age", "86400")
		if strings.HasSuffix(r.URL.Path, "/whep") {
			h.Set("Accept-Post", "application/sdp")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}

	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "~status" { // "~" is in no path name
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		s.serveStatus(w, r)
		return
	}
	if p == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		s.serveIndex(w, r)
		return
	}
	if name, ok := strings.CutSuffix(p, "/whep"); ok {
		if !validName(w, name) {
			return
		}
		if r.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "use POST with an sdp offer")
			return
		}
		s.servePost(w, r, name)
		return
	}
	if i := strings.LastIndex(p, "/whep/"); i > 0 {
		name, id := p[:i], p[i+len("/whep/"):]
		if !validName(w, name) {
			return
		}
		switch r.Method {
		case http.MethodPatch:
			s.servePatch(w, r, name, id)
		case http.MethodDelete:
			s.serveDelete(w, name, id)
		default:
			httpError(w, http.StatusMethodNotAllowed, "use PATCH or DELETE on a session")
		}
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if !validName(w, p) {
		return
	}
	s.servePlayer(w, r, p)
}

// validName answers 400 to a name the path-name rule refuses, before it
// is looked up or authorized.
func validName(w http.ResponseWriter, name string) bool {
	if err := guard.ValidatePathName(name); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return false
	}
	return true
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request, path string) bool {
	if s.o.Auth == nil {
		return true
	}
	err := s.o.Auth.CheckContext(r.Context(), auth.HTTPRequest(r, auth.ActionRead, path, "whep"))
	if err == nil {
		return true
	}
	auth.WriteHTTPRefusal(w, r, err)
	return false
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request, name string) {
	if !s.authorize(w, r, name) {
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/sdp") {
		httpError(w, http.StatusUnsupportedMediaType, "content type must be application/sdp")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, ErrBodyTooLarge.Error()+": limit is 64 KiB")
			return
		}
		httpError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	off, err := parseOffer(string(body))
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.reservePending() {
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, ErrTooManyPending.Error())
		return
	}

	start := time.Now()
	var raddr net.Addr
	if ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		raddr = ap
	}
	lease, err := s.o.Paths.Acquire(r.Context(), name, streaming.ReaderRequest{Protocol: "webrtc", RemoteAddr: raddr})
	if err != nil {
		s.releasePending()
		s.acquireError(w, name, err)
		return
	}
	ss, answer, code, err := s.newSession(r, name, lease, off, string(body))
	if err != nil {
		lease.Release()
		s.log.Info().Err(err).Str("path", name).Str("remote", r.RemoteAddr).Msg("webrtc offer refused")
		httpError(w, code, err.Error())
		return
	}
	// The answer may come long after ServeHTTP's write deadline was set
	// (an on-demand source starting): it gets a deadline of its own.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/"+name+"/whep/"+ss.id)
	h.Set("ETag", ss.etag)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
	ss.log.Info().Dur("setup", time.Since(start)).Msg("webrtc session created")
}

func (s *Server) acquireError(w http.ResponseWriter, name string, err error) {
	s.log.Info().Err(err).Str("path", name).Msg("webrtc reader could not acquire path")
	switch {
	case errors.Is(err, streaming.ErrPathNotFound), errors.Is(err, streaming.ErrNoStream):
		httpError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, streaming.ErrTooManyReaders), errors.Is(err, streaming.ErrStartTimeout),
		errors.Is(err, streaming.ErrClosed), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "2")
		httpError(w, http.StatusServiceUnavailable, err.Error())
	default:
		httpError(w, http.StatusInternalServerError, "acquire path: "+err.Error())
	}
}

// newSession negotiates the peer connection for an acquired path. It takes
// the caller's pending place (reservePending): the session gives it back
// once connected or closed, an error at once. On error it returns the
// HTTP status to answer with; the caller releases the lease.
func (s *Server) newSession(r *http.Request, name string, lease *streaming.Lease, off *offered, offer string) (_ *session, answer string, code int, err error) {
	var ss *session
	defer func() {
		if err != nil && ss == nil {
			s.releasePending()
		}
	}()
	strm := lease.Stream()
	video, audio, err := planTracks(strm.Desc(), off)
	if err != nil {
		// No playable track, or H.264 with B-frames: 406 with the reason.
		return nil, "", http.StatusNotAcceptable, err
	}
	if video != nil && s.knownBFrames(name, video.format) {
		return nil, "", http.StatusNotAcceptable, ErrBFrames
	}

	s.mu.Lock()
	parent := s.ctx
	s.mu.Unlock()
	if parent == nil {
		return nil, "", http.StatusServiceUnavailable, ErrServerClosed
	}
	api, err := s.ice.peerAPI()
	if err != nil {
		return nil, "", http.StatusServiceUnavailable, fmt.Errorf("webrtc engine: %w", err)
	}
	pc, err := api.NewPeerConnection(pwebrtc.Configuration{ICEServers: s.ice.iceServers})
	if err != nil {
		return nil, "", http.StatusInternalServerError, fmt.Errorf("new peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	ss = &session{
		id:        newID(),
		path:      name,
		srv:       s,
		lease:     lease,
		strm:      strm,
		q:         streaming.NewQueue(s.o.WriteQueueSize),
		held:      make([]*streaming.Packet, 0, maxHeld),
		pc:        pc,
		video:     video,
		audio:     audio,
		ctx:       ctx,
		cancel:    cancel,
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	ss.pending.Store(true)
	ss.etag = `"` + ss.id[:12] + `"`
	ss.log = s.log.With().Str("path", name).Str("session", ss.id[:8]).Str("remote", r.RemoteAddr).Logger()
	ok := false
	defer func() {
		if !ok {
			ss.givePendingBack()
			// Closing the peer connection ends the RTCP readers; wait for them.
			cancel()
			_ = pc.Close()
			ss.drains.Wait()
		}
	}()

	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, "", http.StatusBadRequest, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	if video != nil {
		if ss.vtrack, err = s.addTrack(ss, video, "video"); err != nil {
			return nil, "", http.StatusInternalServerError, err
		}
		if ss.rp, err = newVideoWriter(video); err != nil {
			return nil, "", http.StatusInternalServerError, err
		}
	}
	if audio != nil {
		if ss.atrack, err = s.addTrack(ss, audio, "audio"); err != nil {
			return nil, "", http.StatusInternalServerError, err
		}
	}
	// An offered m-line the path cannot feed (audio on a video-only path,
	// a codec the path lacks, a second line of a kind) is answered
	// inactive. Pion would answer it sendonly with no track behind it, and
	// players such as go2rtc then wait for that track for ever.
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == nil {
			if err := tr.Stop(); err != nil {
				return nil, "", http.StatusInternalServerError, fmt.Errorf("stop unfed %s transceiver: %w", tr.Kind(), err)
			}
		}
	}
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(ss.setPeer)
	pc.OnConnectionStateChange(func(st pwebrtc.PeerConnectionState) {
		ss.log.Debug().Str("state", st.String()).Msg("peer connection state")
		switch st {
		case pwebrtc.PeerConnectionStateConnected:
			ss.markConnected()
		case pwebrtc.PeerConnectionStateFailed, pwebrtc.PeerConnectionStateClosed:
			ss.stop(ErrPeerGone)
		}
	})

	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", http.StatusBadRequest, fmt.Errorf("%w: create answer: %w", ErrBadOffer, err)
	}
	gathered := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		if errors.Is(err, pwebrtc.ErrUnsupportedCodec) {
			// The offer names the codec in a form pion does not match
			// (no clock rate, a damaged fmtp line): the offer's fault.
			return nil, "", http.StatusNotAcceptable, fmt.Errorf("%w: %w", ErrBadOffer, err)
		}
		return nil, "", http.StatusInternalServerError, fmt.Errorf("set local description: %w", err)
	}
	gt := time.NewTimer(s.o.GatherTimeout)
	select {
	case <-gathered:
	case <-gt.C:
		ss.log.Debug().Msg("ice gathering not complete in time; answering with what is gathered")
	case <-r.Context().Done():
		gt.Stop()
		return nil, "", http.StatusServiceUnavailable, r.Context().Err()
	}
	gt.Stop()
	ss.remoteUfrag = iceUfrag(offer)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, "", http.StatusServiceUnavailable, ErrServerClosed
	}
	s.sessions[ss.id] = ss
	s.wg.Add(1)
	s.mu.Unlock()
	ok = true
	go func() {
		defer s.wg.Done()
		ss.run()
	}()
	strm.AddReader(ss)
	return ss, pc.LocalDescription().SDP, http.StatusCreated, nil
}

func (s *Server) addTrack(ss *session, tp *trackPlan, kind string) (*pwebrtc.TrackLocalStaticRTP, error) {
	tr, err := pwebrtc.NewTrackLocalStaticRTP(tp.codec, kind, "camgate")
	if err != nil {
		return nil, fmt.Errorf("new %s track: %w", kind, err)
	}
	sender, err := ss.pc.AddTrack(tr)
	if err != nil {
		return nil, fmt.Errorf("add %s track: %w", kind, err)
	}
	// The answer names only the codec that will be sent: without this it
	// lists every registered one the offer has (H.265, other H.264
	// profiles), which the browser then keeps ready for nothing.
	for _, t := range ss.pc.GetTransceivers() {
		if t.Sender() != sender {
			continue
		}
		if err := t.SetCodecPreferences([]pwebrtc.RTPCodecParameters{{RTPCodecCapability: tp.codec}}); err != nil {
			ss.log.Debug().Str("error", err.Error()).Str("codec", tp.codec.MimeType).Msg("answering every matching codec")
		}
	}
	ss.drainRTCP(sender)
	return tr, nil
}

func iceUfrag(sdpText string) string {
	for _, line := range strings.Split(sdpText, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

func (s *Server) lookup(name, id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[id]
	if ss == nil || ss.path != name {
		return nil
	}
	return ss
}

func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, name, id string) {
	ss := s.lookup(name, id)
	if ss == nil {
		httpError(w, http.StatusNotFound, ErrSessionNotFound.Error())
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/trickle-ice-sdpfrag") {
		httpError(w, http.StatusUnsupportedMediaType, "content type must be application/trickle-ice-sdpfrag")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != ss.etag {
		httpError(w, http.StatusPreconditionFailed, "etag does not match the session")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, ErrBodyTooLarge.Error())
		return
	}
	mid := ""
	var cands []string
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			if u := strings.TrimPrefix(line, "a=ice-ufrag:"); u != ss.remoteUfrag {
				httpError(w, http.StatusNotImplemented, ErrICERestart.Error())
				return
			}
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			cands = append(cands, strings.TrimPrefix(line, "a="))
		}
	}
	for _, c := range cands {
		init := pwebrtc.ICECandidateInit{Candidate: c}
		if mid != "" {
			m := mid
			init.SDPMid = &m
		} else {
			var zero uint16
			init.SDPMLineIndex = &zero
		}
		if err := ss.pc.AddICECandidate(init); err != nil {
			httpError(w, http.StatusBadRequest, "bad candidate: "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) serveDelete(w http.ResponseWriter, name, id string) {
	ss := s.lookup(name, id)
	if ss == nil {
		httpError(w, http.StatusNotFound, ErrSessionNotFound.Error())
		return
	}
	ss.stop(errDeleted)
	select {
	case <-ss.done:
	case <-time.After(5 * time.Second):
	}
	w.WriteHeader(http.StatusOK)
}
