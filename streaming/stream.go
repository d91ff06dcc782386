package streaming

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Reader receives a stream's packets.
type Reader interface {
	// WritePacket is called on the stream's writer goroutine for every
	// packet, in order, starting with the cached keyframe group. It must
	// not block: it queues or drops, and returns false when it dropped.
	// p is valid during the call only; Retain it to keep it.
	WritePacket(p *Packet) bool
	// Close tells the reader its stream ended. It must not block.
	Close(err error)
}

// Counters are a path's traffic figures, shared by the streams it has had.
// 64-bit atomics: safe on 32-bit ARM as struct fields of atomic types.
type Counters struct {
	BytesIn    atomic.Uint64
	PacketsIn  atomic.Uint64
	BytesOut   atomic.Uint64
	Dropped    atomic.Uint64 // packets not delivered to slow readers
	Reconnects atomic.Uint64
}

// Stream fans the packets of one source out to its readers.
type Stream struct {
	desc     *description.Session
	counters *Counters

	mu      sync.Mutex
	readers []Reader
	gop     gopCache
	closed  bool
	onClose []func()
	codecs  []videoCodec
	clocks  []senderClock // by media index
}

// senderClock ties a media's RTP clock to wall-clock time, for the RTCP
// sender reports relays send their readers: the RTP timestamp and NTP time
// of a recent packet, and when it was received here.
type senderClock struct {
	rtp  uint32
	ntp  time.Time
	at   time.Time
	rate int
	ok   bool
}

// gopLimits bound the keyframe-group cache: a camera with a very long GOP
// or a very high bitrate falls back to waiting for the next IDR.
const (
	gopMaxPackets = 4096
	gopMaxBytes   = 6 << 20
)

func newStream(desc *description.Session, c *Counters) *Stream {
	s := &Stream{desc: desc, counters: c}
	s.codecs = make([]videoCodec, len(desc.Medias))
	s.clocks = make([]senderClock, len(desc.Medias))
	s.gop.video = -1
	for i, m := range desc.Medias {
		for _, f := range m.Formats {
			if c := codecOf(f); c != codecOther {
				s.codecs[i] = c
				if s.gop.video < 0 {
					s.gop.video = i
				}
			}
		}
	}
	return s
}

// Desc is the stream's session description. Readers must not modify it.
func (s *Stream) Desc() *description.Session { return s.desc }

// OnClose registers f to run once when the stream closes.
func (s *Stream) OnClose(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f()
		return
	}
	s.onClose = append(s.onClose, f)
	s.mu.Unlock()
}

// AddReader attaches r. It first receives the cached keyframe group, then
// live packets; nothing in between is lost. Adding to a closed stream
// closes r at once.
func (s *Stream) AddReader(r Reader) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.Close(ErrStreamClosed)
		return
	}
	for _, p := range s.gop.pkts {
		if !r.WritePacket(p) {
			s.counters.Dropped.Add(1)
		}
	}
	s.readers = append(s.readers, r)
	s.mu.Unlock()
}

// RemoveReader detaches r; it is not closed.
func (s *Stream) RemoveReader(r Reader) {
	s.mu.Lock()
	for i, x := range s.readers {
		if x == r {
			last := len(s.readers) - 1
			s.readers[i] = s.readers[last]
			s.readers[last] = nil
			s.readers = s.readers[:last]
			break
		}
	}
	s.mu.Unlock()
}

// CountDropped counts n packets that a reader accepted from WritePacket
// (returning true) and lost later, e.g. held to be written in a batch.
func (s *Stream) CountDropped(n uint64) { s.counters.Dropped.Add(n) }

// Readers is the number of attached readers.
func (s *Stream) Readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readers)
}

// WriteRTP hands one packet of media mi (an index into Desc().Medias) to
// every reader. It copies pkt, so the caller may reuse it afterwards.
func (s *Stream) WriteRTP(mi int, forma format.Format, pkt *rtp.Packet, ntp time.Time) {
	p := newPacket(pkt)
	p.Media = s.desc.Medias[mi]
	p.MediaIndex = mi
	p.Format = forma
	p.NTP = ntp
	size := uint64(p.Size())
	s.counters.BytesIn.Add(size)
	s.counters.PacketsIn.Add(1)
	if c := s.codecs[mi]; c != codecOther {
		p.Keyed = true
		p.Key = isKeyPayload(c, pkt.Payload)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.Release()
		return
	}
	s.gop.add(p)
	// Video timestamps are taken from keyframes only: with B-frames, other
	// frames' timestamps are not in sending order.
	if !p.Keyed || p.Key {
		if rate := forma.ClockRate(); rate > 0 {
			s.clocks[mi] = senderClock{rtp: pkt.Timestamp, ntp: ntp, at: time.Now(), rate: rate, ok: true}
		}
	}
	var sent, dropped uint64
	for _, r := range s.readers {
		if r.WritePacket(p) {
			sent++
		} else {
			dropped++
		}
	}
	s.mu.Unlock()
	if sent > 0 {
		s.counters.BytesOut.Add(sent * size)
	}
	if dropped > 0 {
		s.counters.Dropped.Add(dropped)
	}
	p.Release()
}

// SenderClock returns the RTP timestamp and NTP time of media mi at now,
// extrapolated from a recent packet (a keyframe for video); ok is false
// before the first one and once the last is a minute old.
func (s *Stream) SenderClock(mi int, now time.Time) (rtpTS uint32, ntp time.Time, ok bool) {
	s.mu.Lock()
	c := s.clocks[mi]
	s.mu.Unlock()
	elapsed := now.Sub(c.at)
	if !c.ok || elapsed < 0 || elapsed > time.Minute {
		return 0, time.Time{}, false // no packet yet, or a stalled source: no report
	}
	return c.rtp + uint32(elapsed.Nanoseconds()*int64(c.rate)/1e9), c.ntp.Add(elapsed), true
}

// resetGOP forgets the cached keyframe group (the source reconnected).
func (s *Stream) resetGOP() {
	s.mu.Lock()
	s.gop.reset()
	for i := range s.clocks {
		s.clocks[i].ok = false // the next session's timestamps start afresh
	}
	s.mu.Unlock()
}

// close ends the stream: readers are closed with err and detached.
func (s *Stream) close(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	readers := s.readers
	s.readers = nil
	s.gop.reset()
	hooks := s.onClose
	s.onClose = nil
	s.mu.Unlock()
	for _, r := range readers {
		r.Close(err)
	}
	for _, f := range hooks {
		f()
	}
}

// gopCache holds every packet since the start of the latest keyframe
// group's first access unit.
type gopCache struct {
	video   int // media index of the cached video track, -1 for none
	pkts    []*Packet
	bytes   int
	valid   bool   // pkts starts with a keyframe access unit
	auStart int    // index in pkts of the current video access unit
	auTS    uint32 // RTP timestamp of the current video access unit
	auKey   bool   // current access unit already started a group
	auSeen  bool
}

func (g *gopCache) add(p *Packet) {
	if g.video < 0 {
		return
	}
	if p.MediaIndex == g.video {
		if !g.auSeen || p.RTP.Timestamp != g.auTS {
			g.auSeen, g.auTS, g.auKey = true, p.RTP.Timestamp, false
			g.auStart = len(g.pkts)
		}
		if p.Key && !g.auKey {
			g.auKey = true
			g.trimTo(g.auStart)
			g.valid = true
		}
	}
	if !g.valid {
		return
	}
	if len(g.pkts) >= gopMaxPackets || g.bytes+len(p.RTP.Payload) > gopMaxBytes {
		g.reset()
		return
	}
	p.Retain()
	g.pkts = append(g.pkts, p)
	g.bytes += len(p.RTP.Payload)
}

// trimTo drops pkts[:i], keeping the slice's storage.
func (g *gopCache) trimTo(i int) {
	for _, p := range g.pkts[:i] {
		g.bytes -= len(p.RTP.Payload)
		p.Release()
	}
	n := copy(g.pkts, g.pkts[i:])
	clear(g.pkts[n:])
	g.pkts = g.pkts[:n]
	g.auStart -= i
}

func (g *gopCache) reset() {
	for _, p := range g.pkts {
		p.Release()
	}
	clear(g.pkts)
	g.pkts = g.pkts[:0]
	g.bytes, g.valid, g.auSeen, g.auKey, g.auStart = 0, false, false, false, 0
}
