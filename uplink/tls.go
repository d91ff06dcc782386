package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/camgate/camgate/internal/redact"
)

// CheckBroker checks a broker URL as New does and tells whether it wants
// TLS (and so the TLS files). The errors wrap ErrBadBroker and show the
// URL only redacted (it may carry a password).
func CheckBroker(broker string) (tls bool, err error) {
	return brokerScheme(broker)
}

// brokerScheme checks the broker URL and tells whether it wants TLS.
func brokerScheme(broker string) (secure bool, err error) {
	u, err := url.Parse(broker)
	if err != nil {
		return false, fmt.Errorf("broker %q is not a URL (percent-encode special characters of a password, or set uplink.password): %w", redact.URL(broker), ErrBadBroker)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ws":
	case "ssl", "tls", "mqtts", "wss":
		secure = true
	default:
		return false, fmt.Errorf("broker scheme %q (want tcp, ssl, ws or wss): %w", u.Scheme, ErrBadBroker)
	}
	if u.Hostname() == "" {
		return false, fmt.Errorf("broker: missing host: %w", ErrBadBroker)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return false, fmt.Errorf("broker: port %s is not from 1 to 65535: %w", p, ErrBadBroker)
		}
	}
	return secure, nil
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
