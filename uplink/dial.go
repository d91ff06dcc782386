package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dialer opens broker connections for paho so that a stop during a
// connect attempt is prompt: the dial and the TLS handshake follow the
// session's context, and until the session is up the context's end closes
// the connection, which ends paho's wait for CONNACK. (paho's own dial
// only knows a timeout, and a stop must finish within the agent's 5 s.)
type dialer struct {
	mu      sync.Mutex
	ctx     context.Context
	release func() bool // stops the close-on-cancel of the pending connection
}

// arm sets the context of the next connect attempt.
func (d *dialer) arm(ctx context.Context) {
	d.mu.Lock()
	d.ctx, d.release = ctx, nil
	d.mu.Unlock()
}

// established keeps the connection open past the context's end (the
// session closes it itself, after publishing the offline status).
func (d *dialer) established() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.release != nil {
		d.release()
		d.release = nil
	}
}

func (d *dialer) open(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		return nil, errors.New("dial outside a session")
	}
	var conn net.Conn
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri
		u.User = nil
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		c, err := paho.NewWebsocket(u.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
		if err != nil {
			return nil, err
		}
		conn = c
	default:
		nd := net.Dialer{Timeout: o.ConnectTimeout}
		c, err := nd.DialContext(ctx, "tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		conn = c
		if uri.Scheme != "tcp" && uri.Scheme != "mqtt" {
			cfg := o.TLSConfig.Clone()
			if cfg == nil {
				cfg = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			if cfg.ServerName == "" {
				cfg.ServerName = uri.Hostname()
			}
			tc := tls.Client(c, cfg)
			hctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				c.Close()
				return nil, err
			}
			conn = tc
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	d.mu.Lock()
	d.release = stop
	d.mu.Unlock()
	return conn, nil
}
