package hls

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// Paths is the streaming core as the server uses it; *streaming.Manager
// satisfies it. Acquire starts an on-demand source and waits for it.
type Paths interface {
	Acquire(ctx context.Context, name string, req streaming.ReaderRequest) (*streaming.Lease, error)
}

// Authenticator checks a request; *auth.Authenticator satisfies it and
// reports refusals itself. auth.ErrThrottled means 429 and auth.ErrBusy
// 503, both with Retry-After; any other error 401.
type Authenticator interface {
	CheckContext(ctx context.Context, r auth.Request) error
}

// Options configure a Server. Zero values take the stated defaults.
type Options struct {
	// Address is the HTTP listen address; default ":8888".
	Address string
	// Paths gives access to streams; required.
	Paths Paths
	// Auth checks credentials; nil allows everybody.
	Auth Authenticator
	// AllowOrigin is the CORS Access-Control-Allow-Origin value; default
	// "*" (the player page is served from the WebRTC port, another origin).
	AllowOrigin string

	// MuxerCloseAfter is how long a muxer lives without any request before
	// it is closed and releases its path; default 10s.
	MuxerCloseAfter time.Duration
	// SegmentCount is the number of segments kept (7 at least for
	// LL-HLS); default 7.
	SegmentCount int
	// SegmentMinDuration is the least duration of a segment (a segment
	// ends at the first keyframe after it); default 1s.
	SegmentMinDuration time.Duration
	// PartMinDuration is the least duration of an LL-HLS part; default 200ms.
	PartMinDuration time.Duration
	// SegmentMaxSize bounds one segment in memory; default 50 MB.
	SegmentMaxSize uint64
	// WriteQueueSize is the number of packets queued between the stream
	// and a muxer; default 4096, which holds a whole cached keyframe group.
	WriteQueueSize int

	// MaxConns and MaxConnsPerIP cap the open HTTP connections, in total
	// (the excess gets 503 at once) and from one client address (429).
	// 0 = no cap. The agent passes hls.maxConnections and
	// hls.maxConnectionsPerIP.
	MaxConns, MaxConnsPerIP int
	// ReadHeaderTimeout bounds reading a request's header; default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds a response from when its handler starts it
	// (after a muxer is ready): an LL-HLS blocking playlist request waits
	// for the next part within it; default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request; default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; default 16 KiB.
	MaxHeaderBytes int
	// Logger is the parent logger; the server adds component=hls.
	Logger zerolog.Logger
}

func (o *Options) setDefaults() error {
	if o.Paths == nil {
		return errors.New("hls options: Paths is required")
	}
	if o.Address == "" {
		o.Address = ":8888"
	}
	if o.AllowOrigin == "" {
		o.AllowOrigin = "*"
	}
	if o.MuxerCloseAfter <= 0 {
		o.MuxerCloseAfter = 10 * time.Second
	}
	if o.SegmentCount < 7 {
		o.SegmentCount = 7
	}
	if o.SegmentMinDuration <= 0 {
		o.SegmentMinDuration = time.Second
	}
	if o.PartMinDuration <= 0 {
		o.PartMinDuration = 200 * time.Millisecond
	}
	if o.SegmentMaxSize == 0 {
		o.SegmentMaxSize = 50 << 20
	}
	if o.WriteQueueSize <= 0 {
		o.WriteQueueSize = 4096
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	// guard.ListenHTTP fills the other HTTP timeouts and MaxHeaderBytes.
	return nil
}
