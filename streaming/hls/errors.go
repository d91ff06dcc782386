package hls

import (
	"errors"
	"strings"
)

var (
	// ErrServerClosed is returned for requests that arrive while the server stops.
	ErrServerClosed = errors.New("hls server closed")
	// ErrIdle ends a muxer no client has fetched from for MuxerCloseAfter.
	ErrIdle = errors.New("no hls client for a while")
	// ErrDiscontinuity ends a muxer whose source's timestamps jumped (it
	// reconnected with the same tracks); players load index.m3u8 again.
	ErrDiscontinuity = errors.New("source timestamps jumped")
	// ErrNoMuxer means a playlist, segment or part was asked for a path
	// whose muxer is gone: the player must load index.m3u8 again.
	ErrNoMuxer = errors.New("stream not muxed now: load index.m3u8 again")
)

// UnsupportedCodecsError says which tracks a path has when HLS can carry
// none of them.
type UnsupportedCodecsError struct {
	// Stream lists the codecs of the path's tracks, e.g. "MPEG-4 Video".
	Stream []string
}

func (e *UnsupportedCodecsError) Error() string {
	s := "none"
	if len(e.Stream) > 0 {
		s = strings.Join(e.Stream, ", ")
	}
	return "no track hls can carry: the stream has " + s + " (camgate muxes H264, H265, MPEG-4 Audio and Opus into hls)"
}
