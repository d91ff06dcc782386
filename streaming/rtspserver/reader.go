package rtspserver

import (
	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/streaming"
)

// reader writes a stream's packets into one RTSP session. It runs on the
// stream's writer goroutine; gortsplib's per-session queue is the bounded
// buffer between it and the network.
type reader struct {
	ss      *gortsplib.ServerSession
	setup   []bool // by media index: set up by this session
	scratch rtp.Packet
	skipKey bool // lost a video packet: wait for the next keyframe
	dropped uint64
}

func newReader(ss *gortsplib.ServerSession, desc *description.Session, medias []*description.Media) *reader {
	r := &reader{ss: ss, setup: make([]bool, len(desc.Medias))}
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
	if r.skipKey && video {
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
		if video {
			r.skipKey = true
		}
		return false
	}
	return true
}

// Close implements streaming.Reader.
func (r *reader) Close(error) { r.ss.Close() }
