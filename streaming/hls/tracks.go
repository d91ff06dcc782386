package hls

import (
	"bytes"
	"errors"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"
)

// maxJump is how far a track's RTP clock may drift from the receive
// clock between two packets before the muxer counts it as the source
// restarting (new RTP timestamps on the same tracks).
const maxJump = 5 * time.Second

// track is one media of the stream that goes into the muxer: its
// depacketizer and its place on the muxer's timeline.
type track struct {
	media  int // index in the stream's Desc().Medias
	format format.Format
	hls    *gohlslib.Track
	rate   int
	video  bool

	// decode turns one RTP packet into zero or more units and the RTP
	// timestamp they carry; write hands them to the muxer.
	decode func(pkt *rtp.Packet) (units [][]byte, ts uint32, err error)
	write  func(m *gohlslib.Muxer, ntp time.Time, pts int64, units [][]byte) error

	started bool
	prevTS  uint32
	pts     int64 // unwrapped PTS of prevTS, in rate units
	prevNTP time.Time

	// key is the latest unit a player can start from (a video keyframe
	// access unit with its parameter sets, any audio unit) and keyPTS its
	// PTS; closeMuxer replays it (see release.go).
	key    [][]byte
	keyPTS int64
	last   int64 // PTS of the latest unit written
}

// timeline puts every track on one clock: each track's first timestamp
// is placed by the receive time (NTP) of its first packet relative to the
// first packet of any track. Packets of the cached keyframe group carry
// their original receive times, so the replay keeps its spacing.
type timeline struct {
	ref time.Time
	set bool
}

// place returns the PTS of a unit with RTP timestamp ts received at ntp;
// ok is false when the track's clock jumped.
func (tl *timeline) place(t *track, ts uint32, ntp time.Time) (pts int64, ok bool) {
	if !tl.set {
		tl.ref, tl.set = ntp, true
	}
	if !t.started {
		t.started = true
		t.prevTS, t.prevNTP = ts, ntp
		t.pts = int64(ntp.Sub(tl.ref)) * int64(t.rate) / int64(time.Second)
		return t.pts, true
	}
	d := int64(int32(ts - t.prevTS))
	if wall := ntp.Sub(t.prevNTP); absDur(time.Duration(d*int64(time.Second)/int64(t.rate))-wall) > maxJump {
		return 0, false
	}
	t.pts += d
	t.prevTS, t.prevNTP = ts, ntp
	return t.pts, true
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// newTracks picks what the muxer can carry from desc: the first H.264 or
// H.265 video and the first MPEG-4 Audio (AAC) or Opus audio.
func newTracks(desc *description.Session) ([]*track, error) {
	var video, audio *track
	var codecNames []string
	for mi, m := range desc.Medias {
		for _, f := range m.Formats {
			codecNames = append(codecNames, f.Codec())
			t, err := newTrack(mi, f)
			if err != nil || t == nil {
				continue
			}
			if t.video && video == nil {
				video = t
			} else if !t.video && audio == nil {
				audio = t
			}
		}
	}
	var out []*track
	if video != nil {
		out = append(out, video)
	}
	if audio != nil {
		out = append(out, audio)
	}
	if len(out) == 0 {
		return nil, &UnsupportedCodecsError{Stream: codecNames}
	}
	return out, nil
}

// newTrack returns the track for f, or nil when HLS cannot carry it.
func newTrack(mi int, f format.Format) (*track, error) {
	t := &track{media: mi, format: f, rate: f.ClockRate()}
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		sps, pps := f.SafeParams()
		t.video = true
		t.hls = &gohlslib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: t.rate}
		t.decode = accessUnits(dec.Decode, rtph264.ErrMorePacketsNeeded, rtph264.ErrNonStartingPacketAndNoPrevious)
		ps := &paramSets{sets: [][]byte{sps, pps}, kind: h264Kind}
		t.write = func(m *gohlslib.Muxer, ntp time.Time, pts int64, au [][]byte) error {
			au, key := ps.complete(au)
			if key {
				t.key, t.keyPTS = au, pts
			}
			return m.WriteH264(t.hls, ntp, pts, au)
		}
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		vps, sps, pps := f.SafeParams()
		t.video = true
		t.hls = &gohlslib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}, ClockRate: t.rate}
		t.decode = accessUnits(dec.Decode, rtph265.ErrMorePacketsNeeded, rtph265.ErrNonStartingPacketAndNoPrevious)
		ps := &paramSets{sets: [][]byte{vps, sps, pps}, kind: h265Kind}
		t.write = func(m *gohlslib.Muxer, ntp time.Time, pts int64, au [][]byte) error {
			au, key := ps.complete(au)
			if key {
				t.key, t.keyPTS = au, pts
			}
			return m.WriteH265(t.hls, ntp, pts, au)
		}
	case *format.MPEG4Audio:
		if f.Config == nil {
			return nil, nil
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		t.hls = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: *f.Config}, ClockRate: t.rate}
		t.decode = func(pkt *rtp.Packet) ([][]byte, uint32, error) {
			aus, err := dec.Decode(pkt)
			if errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
				err = nil
			}
			return aus, pkt.Timestamp, err
		}
		t.write = func(m *gohlslib.Muxer, ntp time.Time, pts int64, aus [][]byte) error {
			t.key, t.keyPTS = aus[len(aus)-1:], pts
			return m.WriteMPEG4Audio(t.hls, ntp, pts, aus)
		}
	case *format.Opus:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		ch := f.ChannelCount
		if ch == 0 {
			ch = 2
		}
		t.hls = &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: ch}, ClockRate: t.rate}
		t.decode = func(pkt *rtp.Packet) ([][]byte, uint32, error) {
			p, err := dec.Decode(pkt)
			if err != nil || len(p) == 0 {
				return nil, 0, err
			}
			return [][]byte{p}, pkt.Timestamp, nil
		}
		t.write = func(m *gohlslib.Muxer, ntp time.Time, pts int64, pkts [][]byte) error {
			t.key, t.keyPTS = pkts, pts
			return m.WriteOpus(t.hls, ntp, pts, pkts)
		}
	default:
		return nil, nil
	}
	return t, nil
}

// paramSets puts the parameter sets ahead of keyframes that come without
// them: gohlslib (its DTS extractor) needs them in-band, and many cameras
// send them only in the SDP. Those sent in-band replace the known ones.
type paramSets struct {
	kind codecKind
	sets [][]byte // H.264: SPS, PPS; H.265: VPS, SPS, PPS
}

type codecKind uint8

const (
	h264Kind codecKind = iota
	h265Kind
)

// slot returns the index in sets of a parameter-set NAL unit, or -1, and
// whether the unit is a keyframe (IDR, or an IRAP picture for H.265).
func (ps *paramSets) slot(nalu []byte) (i int, key bool) {
	if len(nalu) == 0 {
		return -1, false
	}
	if ps.kind == h264Kind {
		switch nalu[0] & 0x1f {
		case 7:
			return 0, false
		case 8:
			return 1, false
		case 5:
			return -1, true
		}
		return -1, false
	}
	switch t := (nalu[0] >> 1) & 0x3f; {
	case t == 32, t == 33, t == 34:
		return int(t - 32), false
	case t >= 16 && t <= 21:
		return -1, true
	}
	return -1, false
}

// complete returns au with any missing parameter sets put ahead of its
// keyframe, and whether it holds a keyframe.
func (ps *paramSets) complete(au [][]byte) ([][]byte, bool) {
	key := false
	var has [3]bool
	for _, n := range au {
		i, k := ps.slot(n)
		if i >= 0 {
			ps.sets[i] = n
			has[i] = true
		}
		key = key || k
	}
	if !key {
		return au, false
	}
	var missing [][]byte
	for i, set := range ps.sets {
		if !has[i] && len(set) > 0 {
			missing = append(missing, set)
		}
	}
	if len(missing) == 0 {
		return au, true
	}
	return append(missing, au...), true
}

// accessUnits wraps an H.264/H.265 depacketizer: it returns a whole
// access unit with the timestamp it was sent with. The depacketizer ends
// an access unit at the RTP marker, or, for cameras that set none, when
// the timestamp changes: the unit it returns then is the previous
// packet's.
func accessUnits(decode func(*rtp.Packet) ([][]byte, error), more, noStart error) func(*rtp.Packet) ([][]byte, uint32, error) {
	var prev uint32
	pending := false // the depacketizer holds part of an access unit sent at prev
	return func(pkt *rtp.Packet) ([][]byte, uint32, error) {
		ts, last, held := pkt.Timestamp, prev, pending
		prev = ts
		au, err := decode(pkt)
		switch {
		case errors.Is(err, more):
			pending = true
			return nil, 0, nil
		case errors.Is(err, noStart):
			pending = false
			return nil, 0, nil
		case err != nil:
			pending = false
			return nil, 0, err
		}
		if held && ts != last {
			// Split by timestamp: the unit returned is the one sent at
			// last, and this packet starts the next.
			pending = true
			return au, last, nil
		}
		pending = false
		return au, ts, nil
	}
}

// copyPacket gives a depacketizer a packet of its own: depacketizers keep
// slices of earlier payloads until an access unit is complete, and the
// stream's packets go back to their pool once handled.
func copyPacket(p *rtp.Packet) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{
		Marker: p.Marker, PayloadType: p.PayloadType, SequenceNumber: p.SequenceNumber,
		Timestamp: p.Timestamp, SSRC: p.SSRC,
	}, Payload: bytes.Clone(p.Payload)}
}
