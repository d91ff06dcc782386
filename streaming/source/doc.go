// Package source holds the things a path can pull a stream from: an RTSP
// camera (through gortsplib's client) and the built-in demo pattern.
//
// A Source runs until its context ends or it fails; it never retries by
// itself. Retrying, backoff and reader bookkeeping belong to the path that
// owns it. Sources know nothing of paths: they talk to a Sink.
//
// An rtsps:// camera is verified like a web server (system roots, the
// URL's host) unless its certificate is pinned by fingerprint; a refused
// certificate fails the source with a *CertificateError that names the
// fingerprint to pin. Errors never carry the camera's credentials.
package source

import (
	"context"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// Sink receives what a source produces.
type Sink interface {
	// Ready announces the source's tracks. Packets may follow once it
	// returned nil; an error stops the source.
	Ready(desc *description.Session) error
	// WriteRTP delivers one packet of a media of the announced desc. It
	// does not block and does not keep pkt.
	WriteRTP(medi *description.Media, forma format.Format, pkt *rtp.Packet, ntp time.Time)
}

// Source produces one stream.
type Source interface {
	// Run pulls the stream into sink until ctx ends (returning ctx.Err())
	// or the source fails.
	Run(ctx context.Context, sink Sink) error
}

// Prober is implemented by sources that can tell cheaply whether their peer
// answers at all (a TCP connect to a camera's RTSP port, nothing sent). The
// owner probes between full attempts so that a camera that was gone is
// retried the moment it accepts connections again, instead of after the
// rest of a backoff step, and so that a camera that is down costs a connect
// per probe rather than a full RTSP attempt.
type Prober interface {
	// Probe returns nil when the peer accepts a connection before ctx
	// ends. The caller bounds ctx.
	Probe(ctx context.Context) error
}
