package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
)

// session is one WHEP peer: a reader of one path. Its run goroutine owns
// the teardown; everything else only asks it to stop.
type session struct {
	id    string
	path  string
	etag  string
	srv   *Server
	log   zerolog.Logger
	lease *streaming.Lease
	strm  *streaming.Stream
	q     *streaming.Queue
	pc    *pwebrtc.PeerConnection

	video, audio   *trackPlan
	vtrack, atrack *pwebrtc.TrackLocalStaticRTP
	rp             videoWriter // nil: video passed through unchanged

	// held: the video packets of the access unit being received, on the
	// stream's goroutine (WritePacket) until the session is detached.
	held []*streaming.Packet

	remoteUfrag string

	// peer is the address the session's media goes to, when that is a
	// UDP candidate of the ICE mux: its datagrams are held while an
	// access unit is written and sent together (batchConn).
	peer atomic.Pointer[netip.AddrPort]

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{}
	connOnce  sync.Once
	pending   atomic.Bool // holds a place under MaxPendingSessions
	stopMu    sync.Mutex
	cause     error // the first stop's
	drains    sync.WaitGroup
	done      chan struct{}

	// For the close log: packets from the stream and packets sent.
	queued atomic.Uint64
	sent   atomic.Uint64
}

// maxHeld bounds the video packets a session holds for one access unit.
const maxHeld = 64

// WritePacket implements streaming.Reader: it only queues, never blocks.
//
// Video packets are held until the last packet of their access unit (RTP
// marker bit, or a new timestamp when a camera sets no marker) and queued
// together: the session's goroutine then wakes once per access unit, not
// per packet, and its datagrams leave in one system call (batchConn). A
// player cannot show a frame before its last packet, so holding the others
// adds no latency.
func (s *session) WritePacket(p *streaming.Packet) bool {
	switch {
	case s.video != nil && p.Media == s.video.media && p.Format == s.video.format:
		if !p.RTP.Marker {
			if n := len(s.held); n == maxHeld || (n > 0 && s.held[0].RTP.Timestamp != p.RTP.Timestamp) {
				s.pushHeld()
			}
			p.Retain()
			s.held = append(s.held, p)
			return true
		}
		if len(s.held) > 0 {
			p.Retain()
			s.held = append(s.held, p)
			s.pushHeld()
			return true
		}
	case s.audio != nil && p.Media == s.audio.media && p.Format == s.audio.format:
		if len(s.held) > 0 {
			s.pushHeld()
		}
	default:
		return true // not a track this peer plays
	}
	if !s.q.Push(p) {
		return false
	}
	s.queued.Add(1)
	return true
}

// pushHeld queues the held packets; those the queue drops are counted on
// the stream, as WritePacket already took them.
func (s *session) pushHeld() {
	dropped := s.q.PushAll(s.held)
	s.queued.Add(uint64(len(s.held) - dropped))
	if dropped > 0 {
		s.strm.CountDropped(uint64(dropped))
	}
	s.releaseHeld()
}

// releaseHeld drops the session's references to the held packets.
func (s *session) releaseHeld() {
	for _, p := range s.held {
		p.Release()
	}
	clear(s.held)
	s.held = s.held[:0]
}

// Close implements streaming.Reader: the stream ended.
func (s *session) Close(err error) {
	if err == nil {
		err = streaming.ErrStreamClosed
	}
	s.stop(err)
}

// stop asks the session to end; it does not wait.
func (s *session) stop(cause error) {
	s.stopMu.Lock()
	if s.cause == nil {
		s.cause = cause
	}
	s.stopMu.Unlock()
	s.cancel()
}

func (s *session) stopCause() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	return s.cause
}

func (s *session) markConnected() {
	s.connOnce.Do(func() { close(s.connected) })
	s.givePendingBack()
}

// givePendingBack gives the session's pending place back, once.
func (s *session) givePendingBack() {
	if s.pending.CompareAndSwap(true, false) {
		s.srv.releasePending()
	}
}

// drainRTCP reads a sender's RTCP so the interceptors (NACK, reports) run.
func (s *session) drainRTCP(sender *pwebrtc.RTPSender) {
	s.drains.Add(1)
	go func() {
		defer s.drains.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
}

// run waits for the peer to connect, then moves packets from the queue to
// the tracks until the session stops; it then releases everything.
func (s *session) run() {
	defer close(s.done)
	defer s.teardown()

	timer := time.NewTimer(s.srv.o.HandshakeTimeout)
	select {
	case <-s.connected:
		timer.Stop()
		s.log.Debug().Msg("peer connected")
	case <-timer.C:
		s.stop(ErrHandshakeTimeout)
		return
	case <-s.ctx.Done():
		timer.Stop()
		return
	}

	var writeVideo func(*rtpPacket) error
	if s.vtrack != nil {
		writeVideo = func(p *rtpPacket) error {
			s.sent.Add(1)
			return s.vtrack.WriteRTP(p)
		}
	}
	buf := make([]*streaming.Packet, 64)
	batch := s.srv.ice.batch
	for {
		n, err := s.q.Pop(s.ctx, buf)
		if err != nil {
			s.stop(err)
			return
		}
		peer := s.peer.Load()
		if peer != nil {
			batch.hold(*peer)
		}
		for i, p := range buf[:n] {
			if err == nil {
				err = s.write(p, writeVideo)
			}
			p.Release()
			buf[i] = nil
		}
		if peer != nil {
			batch.release(*peer)
		}
		if err != nil {
			s.stop(err)
			return
		}
	}
}

func (s *session) write(p *streaming.Packet, writeVideo func(*rtpPacket) error) error {
	if s.video != nil && p.Media == s.video.media {
		if s.rp == nil {
			return writeVideo(p.RTP)
		}
		if err := s.rp.process(p.RTP, p, writeVideo); err != nil {
			if errors.Is(err, ErrBFrames) {
				s.srv.markBFrames(s.path, s.video.format)
			}
			return err
		}
		return nil
	}
	if s.atrack != nil {
		s.sent.Add(1)
		if err := s.atrack.WriteRTP(p.RTP); err != nil {
			return fmt.Errorf("write audio: %w", err)
		}
	}
	return nil
}

func (s *session) teardown() {
	s.stop(s.ctx.Err()) // the server's context may have ended first
	s.givePendingBack()
	s.strm.RemoveReader(s)
	s.releaseHeld() // the stream no longer calls WritePacket
	s.q.Close()
	if s.rp != nil {
		s.rp.releaseAll()
	}
	s.lease.Release()
	if err := s.pc.Close(); err != nil {
		s.log.Debug().Err(err).Msg("close peer connection")
	}
	if peer := s.peer.Swap(nil); peer != nil {
		s.srv.ice.batch.forget(*peer)
	}
	s.drains.Wait()
	s.srv.remove(s)

	cause := s.stopCause()
	ev := s.log.Info()
	if errors.Is(cause, ErrBFrames) {
		ev = s.log.Warn()
	}
	select {
	case <-s.connected:
	default:
		ev = ev.Bool("neverConnected", true)
	}
	ev.AnErr("reason", cause).Uint64("queued", s.queued.Load()).Uint64("sent", s.sent.Load()).
		Uint64("dropped", s.q.Dropped()).Msg("webrtc session closed")
}

// errDeleted is the stop cause of a DELETE.
var errDeleted = errors.New("deleted by the peer")

// videoWriter turns a stream's video packets into what the player decodes.
type videoWriter interface {
	// process takes one packet (kept alive through r while it is needed);
	// write gets the packets to send, valid during the call.
	process(pkt *rtpPacket, r ref, write func(*rtpPacket) error) error
	// releaseAll drops any packet still held.
	releaseAll()
}

// newVideoWriter returns the video processor for a plan.
func newVideoWriter(tp *trackPlan) (videoWriter, error) {
	switch f := tp.format.(type) {
	case *format.H264:
		sps, pps := f.SafeParams()
		return newH264Passthrough(sps, pps, tp.reorderUnknown), nil
	case *format.H265:
		return newH265Repacketizer(f)
	}
	return nil, nil
}

// setPeer follows the selected candidate pair: media to a UDP host
// candidate goes through the ICE mux's socket and is batched; any other
// (TCP, relayed) is not.
func (s *session) setPeer(pair *pwebrtc.ICECandidatePair) {
	var next *netip.AddrPort
	if pair != nil && pair.Local != nil && pair.Remote != nil &&
		pair.Local.Typ == pwebrtc.ICECandidateTypeHost && pair.Local.Protocol == pwebrtc.ICEProtocolUDP {
		if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil {
			ap := netip.AddrPortFrom(ip, pair.Remote.Port)
			next = &ap
		}
	}
	if prev := s.peer.Swap(next); prev != nil && (next == nil || *prev != *next) {
		s.srv.ice.batch.forget(*prev)
	}
	if s.ctx.Err() != nil {
		// Ended meanwhile: teardown may have looked before the swap.
		if p := s.peer.Swap(nil); p != nil {
			s.srv.ice.batch.forget(*p)
		}
	}
}
