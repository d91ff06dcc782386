package webrtc

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/sdp/v3"
	pwebrtc "github.com/pion/webrtc/v4"
)

var videoFeedback = []pwebrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// registerCodecs registers what camgate can send. Browsers offer several
// H.264 profiles; each is registered so the answer keeps the one that fits
// the stream (see chooseH264).
func registerCodecs(me *pwebrtc.MediaEngine) error {
	pt := pwebrtc.PayloadType(96)
	for _, plid := range []string{"42001f", "42e01f", "4d001f", "4d0032", "64001f", "640032", "640c1f", "f4001f"} {
		err := me.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{
				MimeType:     pwebrtc.MimeTypeH264,
				ClockRate:    90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: videoFeedback,
			},
			PayloadType: pt,
		}, pwebrtc.RTPCodecTypeVideo)
		if err != nil {
			return fmt.Errorf("register h264: %w", err)
		}
		pt++
	}
	for _, prof := range []string{"1", "2"} {
		err := me.RegisterCodec(pwebrtc.RTPCodecParameters{
			RTPCodecCapability: pwebrtc.RTPCodecCapability{
				MimeType:     pwebrtc.MimeTypeH265,
				ClockRate:    90000,
				SDPFmtpLine:  "level-id=93;profile-id=" + prof + ";tier-flag=0;tx-mode=SRST",
				RTCPFeedback: videoFeedback,
			},
			PayloadType: pt,
		}, pwebrtc.RTPCodecTypeVideo)
		if err != nil {
			return fmt.Errorf("register h265: %w", err)
		}
		pt++
	}
	for _, c := range []pwebrtc.RTPCodecParameters{
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := me.RegisterCodec(c, pwebrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	return nil
}

// offered is what an SDP offer accepts, as far as camgate cares.
type offered struct {
	videoSections int
	audioSections int
	h264          []h264Offer // packetization-mode=1 only
	h265          []string    // fmtp lines
	opus          bool
	pcmu, pcma    bool
}

type h264Offer struct {
	profile [2]byte // profile_idc and constraint flags from profile-level-id
	fmtp    string
}

func (o *offered) names() []string {
	var n []string
	if len(o.h264) > 0 {
		n = append(n, "H264")
	}
	if len(o.h265) > 0 {
		n = append(n, "H265")
	}
	if o.opus {
		n = append(n, "Opus")
	}
	if o.pcmu {
		n = append(n, "PCMU")
	}
	if o.pcma {
		n = append(n, "PCMA")
	}
	return n
}

// parseOffer checks that body is an SDP offer a WHEP player would send and
// lists the codecs in it. Errors wrap ErrBadOffer and say what is wrong.
func parseOffer(body string) (*offered, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	o := &offered{}
	for _, md := range sd.MediaDescriptions {
		switch md.MediaName.Media {
		case "video":
			o.videoSections++
		case "audio":
			o.audioSections++
		default:
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue // rejected section
		}
		if _, ok := md.Attribute("sendonly"); ok {
			continue // the player would send, not receive
		}
		fmtps := map[string]string{}
		for _, a := range md.Attributes {
			if a.Key == "fmtp" {
				if pt, rest, ok := strings.Cut(a.Value, " "); ok {
					fmtps[pt] = rest
				}
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				return nil, fmt.Errorf("%w: malformed rtpmap %q", ErrBadOffer, a.Value)
			}
			name, _, _ := strings.Cut(enc, "/")
			fm := fmtps[pt]
			switch strings.ToUpper(name) {
			case "H264":
				params := fmtpParams(fm)
				if params["packetization-mode"] != "1" {
					continue
				}
				var h h264Offer
				h.fmtp = fm
				if b, err := hex.DecodeString(params["profile-level-id"]); err == nil && len(b) == 3 {
					h.profile = [2]byte{b[0], b[1]}
				} else {
					h.profile = [2]byte{0x42, 0xe0} // RFC 6184 default: constrained baseline
				}
				o.h264 = append(o.h264, h)
			case "H265":
				o.h265 = append(o.h265, fm)
			case "OPUS":
				o.opus = true
			case "PCMU":
				o.pcmu = true
			case "PCMA":
				o.pcma = true
			}
		}
	}
	if o.videoSections+o.audioSections == 0 {
		return nil, fmt.Errorf("%w: no audio or video section", ErrBadOffer)
	}
	return o, nil
}

func fmtpParams(fm string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(fm, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			m[strings.ToLower(k)] = v
		}
	}
	return m
}

// trackPlan is one track of the answer: which stream media it carries and
// the codec announced to the player.
type trackPlan struct {
	media  *description.Media
	format format.Format
	codec  pwebrtc.RTPCodecCapability
	// reorderUnknown is set for H.264 whose SPS does not rule B-frames out;
	// the session then watches the timestamps.
	reorderUnknown bool
}

// planTracks picks at most one video and one audio track of desc that the
// offer can play. A stream with video none of which is playable is refused
// (the player would show black); unplayable audio next to video is dropped.
func planTracks(desc *description.Session, o *offered) (video, audio *trackPlan, err error) {
	var streamCodecs []string
	hasVideo := false
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			streamCodecs = append(streamCodecs, f.Codec())
			switch m.Type {
			case description.MediaTypeVideo:
				hasVideo = true
				if video == nil && o.videoSections > 0 {
					video, err = planVideo(m, f, o)
					if err != nil {
						return nil, nil, err
					}
				}
			case description.MediaTypeAudio:
				if audio == nil && o.audioSections > 0 {
					audio = planAudio(m, f, o)
				}
			}
		}
	}
	if (hasVideo && video == nil) || (video == nil && audio == nil) {
		return nil, nil, &UnsupportedCodecsError{Stream: slices.Compact(streamCodecs), Offered: o.names()}
	}
	return video, audio, nil
}

func planVideo(m *description.Media, f format.Format, o *offered) (*trackPlan, error) {
	switch f := f.(type) {
	case *format.H265:
		if len(o.h265) == 0 {
			return nil, nil
		}
		return &trackPlan{media: m, format: f, codec: pwebrtc.RTPCodecCapability{
			MimeType: pwebrtc.MimeTypeH265, ClockRate: 90000, SDPFmtpLine: o.h265[0], RTCPFeedback: videoFeedback,
		}}, nil
	case *format.H264:
		if len(o.h264) == 0 || f.PacketizationMode >= 2 {
			return nil, nil
		}
		sps, _ := f.SafeParams()
		reorders, known := h264Reorders(sps)
		if known && reorders {
			return nil, ErrBFrames
		}
		return &trackPlan{media: m, format: f, reorderUnknown: !known, codec: pwebrtc.RTPCodecCapability{
			MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: chooseH264(sps, o.h264), RTCPFeedback: videoFeedback,
		}}, nil
	}
	return nil, nil
}

func planAudio(m *description.Media, f format.Format, o *offered) *trackPlan {
	switch f := f.(type) {
	case *format.Opus:
		if o.opus {
			return &trackPlan{media: m, format: f, codec: pwebrtc.RTPCodecCapability{
				MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
			}}
		}
	case *format.G711:
		if f.SampleRate != 8000 || f.ChannelCount != 1 {
			return nil
		}
		if f.MULaw && o.pcmu {
			return &trackPlan{media: m, format: f, codec: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMU, ClockRate: 8000}}
		}
		if !f.MULaw && o.pcma {
			return &trackPlan{media: m, format: f, codec: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypePCMA, ClockRate: 8000}}
		}
	}
	return nil
}

// chooseH264 returns the fmtp line of the offered H.264 variant that best
// fits the stream's SPS: same profile and constraints, then same profile,
// then constrained baseline (which every WebRTC decoder accepts and which
// browsers decode whatever the profile), then the first one.
func chooseH264(sps []byte, offers []h264Offer) string {
	if len(sps) >= 3 {
		for _, h := range offers {
			if h.profile[0] == sps[1] && h.profile[1] == sps[2] {
				return h.fmtp
			}
		}
		for _, h := range offers {
			if h.profile[0] == sps[1] {
				return h.fmtp
			}
		}
	}
	for _, h := range offers {
		if h.profile == [2]byte{0x42, 0xe0} {
			return h.fmtp
		}
	}
	return offers[0].fmtp
}

// h264Reorders says whether an SPS allows frames to be output in another
// order than decoded (B-frames); known is false when the SPS does not say.
func h264Reorders(spsNALU []byte) (reorders, known bool) {
	if len(spsNALU) == 0 {
		return false, false
	}
	var sps h264.SPS
	if err := sps.Unmarshal(spsNALU); err != nil {
		return false, false
	}
	if sps.VUI != nil && sps.VUI.BitstreamRestriction != nil {
		return sps.VUI.BitstreamRestriction.MaxNumReorderFrames > 0, true
	}
	// Baseline has no B slices; with POC type 2 output order is decode order.
	if sps.ProfileIdc == 66 || sps.PicOrderCntType == 2 {
		return false, true
	}
	return false, false
}
