package webrtc

import (
	"errors"
	"strings"
)

var (
	// ErrBadOffer means the request body is not a usable SDP offer.
	ErrBadOffer = errors.New("bad sdp offer")
	// ErrBodyTooLarge means the request body is over the 64 KiB limit.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBFrames means the path's H.264 stream uses B-frames, which browsers
	// refuse to decode over WebRTC.
	ErrBFrames = errors.New("h264 stream uses b-frames, which webrtc players cannot decode")
	// ErrSessionNotFound means a PATCH or DELETE named no live session.
	ErrSessionNotFound = errors.New("whep session not found")
	// ErrICERestart means a PATCH asked for an ICE restart, which is not supported.
	ErrICERestart = errors.New("ice restart is not supported")
	// ErrHandshakeTimeout ends a session whose ICE and DTLS did not finish in time.
	ErrHandshakeTimeout = errors.New("webrtc handshake timed out")
	// ErrPeerGone ends a session whose ICE connection failed or was closed.
	ErrPeerGone = errors.New("peer connection failed or closed")
	// ErrServerClosed is returned for requests that arrive while the server stops.
	ErrServerClosed = errors.New("webrtc server closed")
	// ErrNoCandidates means the options leave no address to announce.
	ErrNoCandidates = errors.New("ipsFromInterfaces is off and additionalHosts and iceServers are empty: no candidate could be announced")
	// ErrTooManyPending refuses an offer while MaxPendingSessions sessions
	// wait for their peers to connect.
	ErrTooManyPending = errors.New("too many webrtc sessions waiting to connect; retry shortly")
)

// OptionError is a setting of Options the server cannot use. Option names
// it as the webrtc section of the config file spells it, e.g.
// "iceServers[1].url".
type OptionError struct {
	Option string
	Err    error
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Err.Error() }

func (e *OptionError) Unwrap() error { return e.Err }

// UnsupportedCodecsError says which tracks a path has and why none of them
// can be played by the peer that made the offer.
type UnsupportedCodecsError struct {
	// Stream lists the codecs of the path's tracks, e.g. "MJPEG", "MPEG-4 Audio".
	Stream []string
	// Offered lists the codecs the offer accepts that camgate can send.
	Offered []string
}

func (e *UnsupportedCodecsError) Error() string {
	msg := "no track the player can decode: the stream has " + listOrNone(e.Stream) +
		"; this player accepts " + listOrNone(e.Offered) +
		" (camgate sends H264, H265 when offered, Opus, PCMU and PCMA over webrtc)"
	if e.videoNoBrowserPlays() {
		msg += ". Browsers play H.264: publish H.264, e.g. add -c:v libx264 to the ffmpeg command, or set the camera's encoder to H.264"
	}
	return msg
}

// videoNoBrowserPlays tells whether the stream's video is only in codecs
// that no browser decodes from camgate (the MPEG-4 Part 2 that ffmpeg
// sends by default to an rtsp:// output, M-JPEG, ...).
func (e *UnsupportedCodecsError) videoNoBrowserPlays() bool {
	other := false
	for _, c := range e.Stream {
		switch c {
		case "H264", "H265":
			return false
		case "MPEG-4 Video", "M-JPEG", "MPEG-1/2 Video", "VP8", "VP9", "AV1":
			other = true
		}
	}
	return other
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
