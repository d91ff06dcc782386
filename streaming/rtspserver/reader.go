package rtspserver

import (
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/streaming"
)

// maxHeld bounds the video packets a reader holds for one access unit.
const maxHeld = 64

// reader writes a stream's packets into one RTSP session. It runs on the
// stream's writer goroutine; gortsplib's per-session queue is the bounded
// buffer between it and the network.
//
// Video packets are held until the last packet of their access unit (RTP
// marker bit, or a new timestamp when a camera sets no marker) and then
// written together: the session's writer goroutine then wakes once per
// access unit instead of once per packet, and the connection sends the
// access unit in one write (batchConn). A player cannot decode an access
// unit before its last packet, so holding the others adds no latency.
type reader struct {
	ss      *gortsplib.ServerSession
	conn    *gortsplib.ServerConn
	st      *streaming.Stream
	setup   []bool // by media index: set up by this session
	scratch rtp.Packet
	held    []*streaming.Packet // retained, one video access unit at most
	skipKey bool                // lost a video packet: wait for the next keyframe
	started bool                // a keyframe has been accepted
	dropped uint64
	out     *directOut // written by a goroutine of its own; nil: through the session

	// A reader whose queue stays full for stallAfter is gone (frozen
	// player, dead network path): it is disconnected instead of holding a
	// session and a socket full of unsent data for ever.
	stallAfter   time.Duration
	failingSince time.Time
	stalled      bool
}

func newReader(ss *gortsplib.ServerSession, conn *gortsplib.ServerConn, st *streaming.Stream, medias []*description.Media, stallAfter time.Duration) *reader {
	desc := st.Desc()
	// skipKey starts true: the first H.264/H.265 packet a player gets is
	// a keyframe (the cached group's first, or the camera's next).
	r := &reader{ss: ss, conn: conn, st: st, stallAfter: stallAfter, skipKey: true, setup: make([]bool, len(desc.Medias)), held: make([]*streaming.Packet, 0, maxHeld)}
	for i, m := range desc.Medias {
		for _, sm := range medias {
			if sm == m {
				r.setup[i] = true
			}
		}
	}
	return r
}

// WritePacket implements streaming.Reader.
func (r *reader) WritePacket(p *streaming.Packet) bool {
	if !r.setup[p.MediaIndex] || p.RTP.PayloadType != p.Format.PayloadType() {
		return true
	}
	video := p.Media.Type == description.MediaTypeVideo
	if r.skipKey && p.Keyed {
		if !p.Key {
			if !r.started {
				// Before the reader's first keyframe nothing is lost:
				// it joins at the next one (or an AUD/SEI ahead of the
				// cached group's SPS is left out).
				return true
			}
			r.dropped++
			return false
		}
		// A keyframe starts here: the rest of its access unit (FU-A
		// fragments, which carry no Key mark) must pass too.
		r.skipKey = false
		r.started = true
	}
	if video && !p.RTP.Marker {
		if n := len(r.held); n == maxHeld || (n > 0 && (r.held[0].MediaIndex != p.MediaIndex || r.held[0].RTP.Timestamp != p.RTP.Timestamp)) {
			r.releaseHeld()
		}
		p.Retain()
		r.held = append(r.held, p)
		return true
	}
	if r.out == nil {
		r.flush()
		return r.send(p)
	}
	// An access unit goes out whole: its last packet together with the
	// held ones (written inline, or queued for the reader's goroutine).
	if len(r.held) > 0 {
		p.Retain()
		r.held = append(r.held, p)
		r.push()
		return true
	}
	if !r.out.deliverOne(p) {
		r.dropped++
		r.checkStall()
		return false
	}
	r.failingSince = time.Time{}
	return true
}

// releaseHeld hands on the held packets: to the reader's own writer, or
// into the session.
func (r *reader) releaseHeld() {
	if r.out != nil {
		r.push()
	} else {
		r.flush()
	}
}

// push delivers the held packets to the reader's writer. Those dropped now
// were accepted earlier, so they are counted on the stream here.
func (r *reader) push() {
	if len(r.held) == 0 {
		return
	}
	lost := r.out.deliver(r.held)
	for i, p := range r.held {
		p.Release()
		r.held[i] = nil
	}
	r.held = r.held[:0]
	if lost > 0 {
		r.dropped += uint64(lost)
		r.st.CountDropped(uint64(lost))
		r.checkStall()
	} else {
		r.failingSince = time.Time{}
	}
}

// flush writes the held packets. Those lost now were accepted earlier, so
// they are counted on the stream here.
func (r *reader) flush() {
	if len(r.held) == 0 {
		return
	}
	var lost uint64
	for i, p := range r.held {
		if !r.send(p) {
			lost++
		}
		p.Release()
		r.held[i] = nil
	}
	r.held = r.held[:0]
	if lost > 0 {
		r.st.CountDropped(lost)
	}
}

// send writes one packet into the session.
func (r *reader) send(p *streaming.Packet) bool {
	if r.skipKey && p.Keyed {
		if !p.Key {
			r.dropped++
			return false
		}
		r.skipKey = false
	}
	// The session stamps its own SSRC into the packet: give it a copy of
	// the header, never the shared packet.
	r.scratch = *p.RTP
	if err := r.ss.WritePacketRTP(p.Media, &r.scratch); err != nil {
		r.dropped++
		if p.Keyed {
			r.skipKey = true
		}
		r.checkStall()
		return false
	}
	r.failingSince = time.Time{}
	return true
}

// checkStall disconnects a reader that has not taken a packet for stallAfter.
func (r *reader) checkStall() {
	now := time.Now()
	if r.failingSince.IsZero() {
		r.failingSince = now
		return
	}
	if !r.stalled && r.stallAfter > 0 && now.Sub(r.failingSince) >= r.stallAfter {
		r.stalled = true
		r.ss.Close()
		if r.conn != nil {
			r.conn.Close()
		}
	}
}

// release drops the held packets of a reader detached from its stream.
func (r *reader) release() {
	for i, p := range r.held {
		p.Release()
		r.held[i] = nil
	}
	r.held = r.held[:0]
	if r.out != nil {
		r.out.stop()
	}
}

// Close implements streaming.Reader.
func (r *reader) Close(error) { r.ss.Close() }
