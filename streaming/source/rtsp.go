package source

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

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
}

func (s *RTSP) client(u *base.URL) (*gortsplib.Client, error) {
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: s.ReadTimeout,
		// Cameras on a plant LAN rarely carry certificates a box can verify;
		// rtsps is used for transport privacy, as NVRs do.
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
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
		return s.fail(ctx, "setup", err)
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
	return s.fail(ctx, "read", c.Wait())
}

// fail turns the client's error into one without credentials, or ctx.Err()
// when the error is only the consequence of cancellation.
func (s *RTSP) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s %q: %w", op, redact.URL(s.URL), redact.Err(err))
}
