package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// brokerScheme checks the broker URL and tells whether it wants TLS.
func brokerScheme(broker string) (secure bool, err error) {
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		return false, fmt.Errorf("broker: %w", ErrBadBroker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ws":
		return false, nil
	case "ssl", "tls", "mqtts", "wss":
		return true, nil
	}
	return false, fmt.Errorf("broker scheme %q (want tcp, ssl, ws or wss): %w", u.Scheme, ErrBadBroker)
}

// LoadTLS builds the client TLS config from PEM files: ca pins the broker's
// CA (system roots when empty); cert and key give a client certificate.
func LoadTLS(ca, cert, key string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate", ca)
		}
		cfg.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("tls: cert and key must be given together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("load tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
