package source

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/faultlog"
	"github.com/camgate/camgate/internal/redact"
)

// RTSP pulls a camera (or any RTSP server) with gortsplib's client.
type RTSP struct {
	// URL is rtsp:// or rtsps://, credentials included. A password with
	// characters url.Parse refuses is read up to the last '@' (see
	// redact.EscapeUserinfo).
	URL string
	// Transport is automatic (UDP, falling back to TCP), tcp, udp or
	// multicast; default automatic.
	Transport string
	// ReadTimeout is how long the camera may stay silent before it counts
	// as lost; default 10 s.
	ReadTimeout time.Duration
	// Fingerprint pins the certificate of an rtsps:// camera: the
	// lower-case hex SHA-256 of its leaf certificate (DER), MediaMTX's
	// sourceFingerprint. When set, that certificate is trusted whatever
	// its issuer, names and dates, and no other. Default: none, the
	// certificate must verify against RootCAs for the URL's host.
	Fingerprint string
	// RootCAs verifies rtsps:// certificates when no Fingerprint is set;
	// default nil: the system roots.
	RootCAs *x509.CertPool
	// Log gets packet loss, undecodable packets (summed, a line a minute
	// at most) and the switch to TCP; default: none.
	Log *zerolog.Logger

	once     sync.Once
	faults   *faultlog.Log
	switched atomic.Bool // told once at info level, then at debug
}

// logger is Log or a no-op one.
func (s *RTSP) logger() *zerolog.Logger {
	if s.Log != nil {
		return s.Log
	}
	nop := zerolog.Nop()
	return &nop
}

// hooks routes the client's fault callbacks, which gortsplib otherwise
// prints on Go's standard logger once per event, to the structured log.
func (s *RTSP) hooks(c *gortsplib.Client) {
	s.once.Do(func() { s.faults = faultlog.New(*s.logger(), "camera stream damaged", time.Minute) })
	c.OnPacketsLost = func(n uint64) { s.faults.Lost(n, "") }
	c.OnDecodeError = func(err error) { s.faults.Undecodable(err, "") }
	c.OnTransportSwitch = func(err error) {
		e := s.logger().Debug()
		if !s.switched.Swap(true) {
			e = s.logger().Info()
		}
		e.Str("reason", redact.Error(err)).Msg("reading the camera over TCP")
	}
}

func (s *RTSP) client(u *base.URL) (*gortsplib.Client, error) {
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: s.ReadTimeout,
		TLSConfig:   s.tlsConfig(),
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	s.hooks(c)
	var tr gortsplib.Transport
	switch s.Transport {
	case "", "automatic":
		return c, nil
	case "tcp":
		tr = gortsplib.TransportTCP
	case "udp":
		tr = gortsplib.TransportUDP
	case "multicast":
		tr = gortsplib.TransportUDPMulticast
	default:
		return nil, fmt.Errorf("unknown rtsp transport %q", s.Transport)
	}
	c.Transport = &tr
	return c, nil
}

// Run implements Source.
func (s *RTSP) Run(ctx context.Context, sink Sink) error {
	u, err := base.ParseURL(redact.EscapeUserinfo(s.URL))
	if err != nil {
		return fmt.Errorf("parse source URL %q: %w", redact.URL(s.URL), redact.Err(err))
	}
	c, err := s.client(u)
	if err != nil {
		return err
	}
	if err := c.Start2(); err != nil {
		return fmt.Errorf("start rtsp client: %w", redact.Err(err))
	}
	// The client's requests block up to ReadTimeout; closing it is how a
	// cancelled context interrupts them.
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-ctx.Done():
			c.Close()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-watchDone
		c.Close()
	}()

	desc, _, err := c.Describe(u)
	if err != nil {
		return s.fail(ctx, "describe", err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return s.fail(ctx, "setup", srtpHint(u, desc, err))
	}
	if err := sink.Ready(desc); err != nil {
		return err
	}
	c.OnPacketRTPAny(func(medi *description.Media, forma format.Format, pkt *rtp.Packet) {
		sink.WriteRTP(medi, forma, pkt, time.Now())
	})
	if _, err := c.Play(nil); err != nil {
		return s.fail(ctx, "play", err)
	}
	err = s.fail(ctx, "read", c.Wait())
	s.faults.Flush()
	return err
}

// Probe implements Prober: a TCP connect to the camera's RTSP port (554
// for rtsp, 322 for rtsps when the URL names none, as gortsplib dials),
// closed at once.
func (s *RTSP) Probe(ctx context.Context) error {
	u, err := base.ParseURL(s.URL)
	if err != nil {
		return fmt.Errorf("parse source URL %s: %s", redact.URL(s.URL), redact.Error(err))
	}
	addr := u.Host
	if u.Port() == "" {
		port := "554"
		if u.Scheme == "rtsps" {
			port = "322"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("probe %s: %s", addr, redact.Error(err))
	}
	return c.Close()
}

// fail turns the client's error into one without credentials, or ctx.Err()
// when the error is only the consequence of cancellation. An untrusted
// rtsps certificate becomes a *CertificateError naming the fingerprint to
// pin.
func (s *RTSP) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = certificateError(err)
	return fmt.Errorf("%s %q: %w", op, redact.URL(s.URL), redact.Err(err))
}
