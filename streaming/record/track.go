package record

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/pion/rtp"
)

// sample is one access unit (video) or frame (audio) of a track, timed in
// the track's clock: dts unwrapped from the RTP timestamps.
type sample struct {
	dts       int64
	ptsOffset int32
	sync      bool
	payload   []byte
	// dur is the duration the codec gives (audio); 0 when only the next
	// sample tells (video).
	dur int64
}

// codecTrack turns one track's RTP packets into samples. Each returned
// sample's payload is the sample's own (not shared with the packet).
type codecTrack interface {
	// decode handles a packet whose timestamp, unwrapped, is pts.
	decode(pkt *rtp.Packet, pts int64) ([]sample, error)
	// codec is the mp4 codec with the parameters seen so far; nil while a
	// video track's parameter sets are unknown.
	codec() mp4.Codec
	// changed reports (and clears) a change of parameters since the last
	// call: the segment must end, its init no longer describes the track.
	changed() bool
}

// newCodecTrack returns the recorder of a format, or an error naming the
// codec when it cannot be stored in fMP4 by mediacommon v2.4.1's fmp4.
func newCodecTrack(f format.Format) (codecTrack, error) {
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		sps, pps := f.SafeParams()
		t := &h264Track{dec: dec}
		t.setParams(sps, pps)
		return t, nil
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		vps, sps, pps := f.SafeParams()
		t := &h265Track{dec: dec}
		t.setParams(vps, sps, pps)
		return t, nil
	case *format.MPEG4Audio:
		if f.Config == nil {
			return nil, errors.New("MPEG-4 Audio without config")
		}
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return &aacTrack{dec: dec, c: &mp4.CodecMPEG4Audio{Config: *f.Config}}, nil
	case *format.Opus:
		return &opusTrack{c: &mp4.CodecOpus{ChannelCount: max(f.ChannelCount, 1)}}, nil
	case *format.G711:
		return &lpcmTrack{g711: true, mulaw: f.MULaw, channels: max(f.ChannelCount, 1),
			c: &mp4.CodecLPCM{BitDepth: 16, SampleRate: f.SampleRate, ChannelCount: max(f.ChannelCount, 1)}}, nil
	case *format.LPCM:
		if f.BitDepth != 16 && f.BitDepth != 24 {
			return nil, fmt.Errorf("LPCM of %d bits", f.BitDepth)
		}
		return &lpcmTrack{channels: f.ChannelCount, width: f.BitDepth / 8,
			c: &mp4.CodecLPCM{BitDepth: f.BitDepth, SampleRate: f.SampleRate, ChannelCount: f.ChannelCount}}, nil
	}
	return nil, fmt.Errorf("%s cannot be recorded", f.Codec())
}

// isDecodeWait reports errors that only mean the depacketizer waits for
// more packets, or for the start of the next access unit.
func isDecodeWait(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded)
}

// dtsExtractor is mediacommon's h264 or h265 DTSExtractor.
type dtsExtractor interface {
	Initialize()
	Extract(au [][]byte, pts int64) (int64, error)
}

// decodeClock gives a video track's access units their decode times.
type decodeClock struct {
	started bool
	prevDTS int64
}

// next returns the decode time of an access unit (sync: a random access
// one); false before the first random access unit, which is dropped.
func (c *decodeClock) next(x dtsExtractor, au [][]byte, pts int64, sync bool) (int64, bool) {
	if !c.started {
		if !sync {
			return 0, false
		}
		c.started = true
		x.Initialize()
		c.prevDTS = pts - 1
	}
	dts, err := x.Extract(au, pts)
	if err != nil || dts <= c.prevDTS {
		// A stream the extractor cannot follow is stored in decode order
		// with its presentation times, which is right without B-frames.
		dts = max(pts, c.prevDTS+1)
		if sync {
			x.Initialize()
		}
	}
	c.prevDTS = dts
	return dts, true
}

// h264Track records H.264. An access unit takes the timestamp of the packet
// that completes it: cameras that set no RTP marker bit get their frames
// one frame late, all of them alike.
type h264Track struct {
	dec      *rtph264.Decoder
	c        *mp4.CodecH264
	dts      h264.DTSExtractor
	clock    decodeClock
	modified bool
}

func (t *h264Track) setParams(sps, pps []byte) {
	if len(sps) == 0 || len(pps) == 0 {
		return
	}
	var p h264.SPS
	if p.Unmarshal(sps) != nil {
		return
	}
	if t.c != nil && bytes.Equal(t.c.SPS, sps) && bytes.Equal(t.c.PPS, pps) {
		return
	}
	if t.c != nil {
		t.modified = true
	}
	t.c = &mp4.CodecH264{SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
}

func (t *h264Track) codec() mp4.Codec {
	if t.c == nil {
		return nil
	}
	return t.c
}

func (t *h264Track) changed() bool {
	c := t.modified
	t.modified = false
	return c
}

func (t *h264Track) decode(pkt *rtp.Packet, pts int64) ([]sample, error) {
	au, err := t.dec.Decode(pkt)
	if err != nil {
		return nil, err
	}
	var sps, pps []byte
	n := 0
	for _, nalu := range au {
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = nalu
		case h264.NALUTypePPS:
			pps = nalu
		case h264.NALUTypeAccessUnitDelimiter:
			continue // a delimiter has no place in a sample
		}
		au[n] = nalu
		n++
	}
	au = au[:n]
	if sps != nil || pps != nil {
		cur := t.c
		if sps == nil && cur != nil {
			sps = cur.SPS
		}
		if pps == nil && cur != nil {
			pps = cur.PPS
		}
		t.setParams(sps, pps)
	}
	if len(au) == 0 || t.c == nil {
		return nil, nil
	}
	sync := h264.IsRandomAccess(au)
	dts, ok := t.clock.next(&t.dts, au, pts, sync)
	if !ok {
		return nil, nil
	}
	s := sample{dts: dts, sync: sync}
	var fs fmp4.Sample
	if err := fs.FillH264(int32(pts-dts), au); err != nil {
		return nil, err
	}
	s.payload, s.ptsOffset = fs.Payload, fs.PTSOffset
	return []sample{s}, nil
}

// h265Track records H.265, like h264Track.
type h265Track struct {
	dec      *rtph265.Decoder
	c        *mp4.CodecH265
	dts      h265.DTSExtractor
	clock    decodeClock
	modified bool
}

func (t *h265Track) setParams(vps, sps, pps []byte) {
	if len(vps) == 0 || len(sps) == 0 || len(pps) == 0 {
		return
	}
	var p h265.SPS
	if p.Unmarshal(sps) != nil {
		return
	}
	if t.c != nil && bytes.Equal(t.c.VPS, vps) && bytes.Equal(t.c.SPS, sps) && bytes.Equal(t.c.PPS, pps) {
		return
	}
	if t.c != nil {
		t.modified = true
	}
	t.c = &mp4.CodecH265{VPS: bytes.Clone(vps), SPS: bytes.Clone(sps), PPS: bytes.Clone(pps)}
}

func (t *h265Track) codec() mp4.Codec {
	if t.c == nil {
		return nil
	}
	return t.c
}

func (t *h265Track) changed() bool {
	c := t.modified
	t.modified = false
	return c
}

func (t *h265Track) decode(pkt *rtp.Packet, pts int64) ([]sample, error) {
	au, err := t.dec.Decode(pkt)
	if err != nil {
		return nil, err
	}
	var vps, sps, pps []byte
	n := 0
	for _, nalu := range au {
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			vps = nalu
		case h265.NALUType_SPS_NUT:
			sps = nalu
		case h265.NALUType_PPS_NUT:
			pps = nalu
		case h265.NALUType_AUD_NUT:
			continue
		}
		au[n] = nalu
		n++
	}
	au = au[:n]
	if vps != nil || sps != nil || pps != nil {
		if cur := t.c; cur != nil {
			if vps == nil {
				vps = cur.VPS
			}
			if sps == nil {
				sps = cur.SPS
			}
			if pps == nil {
				pps = cur.PPS
			}
		}
		t.setParams(vps, sps, pps)
	}
	if len(au) == 0 || t.c == nil {
		return nil, nil
	}
	sync := h265.IsRandomAccess(au)
	dts, ok := t.clock.next(&t.dts, au, pts, sync)
	if !ok {
		return nil, nil
	}
	var fs fmp4.Sample
	if err := fs.FillH265(int32(pts-dts), au); err != nil {
		return nil, err
	}
	return []sample{{dts: dts, ptsOffset: fs.PTSOffset, sync: sync, payload: fs.Payload}}, nil
}

// aacTrack records MPEG-4 Audio (RFC 3640): 1024 samples per access unit.
type aacTrack struct {
	dec *rtpmpeg4audio.Decoder
	c   *mp4.CodecMPEG4Audio
}

func (t *aacTrack) codec() mp4.Codec { return t.c }
func (t *aacTrack) changed() bool    { return false }

func (t *aacTrack) decode(pkt *rtp.Packet, pts int64) ([]sample, error) {
	aus, err := t.dec.Decode(pkt)
	if err != nil {
		return nil, err
	}
	out := make([]sample, 0, len(aus))
	for i, au := range aus {
		out = append(out, sample{
			dts: pts + int64(i)*mpeg4audio.SamplesPerAccessUnit, sync: true,
			payload: bytes.Clone(au), dur: mpeg4audio.SamplesPerAccessUnit,
		})
	}
	return out, nil
}

// opusTrack records Opus: one packet per RTP packet, 48 kHz clock.
type opusTrack struct {
	c *mp4.CodecOpus
}

func (t *opusTrack) codec() mp4.Codec { return t.c }
func (t *opusTrack) changed() bool    { return false }

func (t *opusTrack) decode(pkt *rtp.Packet, pts int64) ([]sample, error) {
	if len(pkt.Payload) == 0 {
		return nil, nil
	}
	return []sample{{dts: pts, sync: true, payload: bytes.Clone(pkt.Payload), dur: opus.PacketDuration2(pkt.Payload)}}, nil
}

// lpcmTrack records LPCM, and G.711 decoded to 16-bit LPCM (fMP4 has no
// G.711 sample entry that players know).
type lpcmTrack struct {
	g711, mulaw bool
	channels    int
	width       int // bytes per sample of LPCM input
	c           *mp4.CodecLPCM
}

func (t *lpcmTrack) codec() mp4.Codec { return t.c }
func (t *lpcmTrack) changed() bool    { return false }

func (t *lpcmTrack) decode(pkt *rtp.Packet, pts int64) ([]sample, error) {
	p := pkt.Payload
	if len(p) == 0 {
		return nil, nil
	}
	if t.g711 {
		n := int64(len(p) / t.channels)
		var pcm []byte
		if t.mulaw {
			var m g711.Mulaw
			m.Unmarshal(p)
			pcm = m
		} else {
			var a g711.Alaw
			a.Unmarshal(p)
			pcm = a
		}
		return []sample{{dts: pts, sync: true, payload: pcm, dur: n}}, nil
	}
	frame := t.channels * t.width
	if len(p)%frame != 0 {
		return nil, fmt.Errorf("LPCM payload of %d bytes is not whole frames of %d", len(p), frame)
	}
	return []sample{{dts: pts, sync: true, payload: bytes.Clone(p), dur: int64(len(p) / frame)}}, nil
}
