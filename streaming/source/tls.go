package source

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
)

// CertificateError is an rtsps:// camera certificate the source refused:
// not trusted by the roots (Err says why), or not the pinned one. Its text
// names the fingerprint to pin, so the operator can copy it from the
// path's lastError or the log.
type CertificateError struct {
	// Fingerprint is the SHA-256 of the certificate the camera presented,
	// lower-case hex: the value for sourceFingerprint.
	Fingerprint string
	// Pinned is the sourceFingerprint it did not match; "" when the
	// certificate was verified against the roots.
	Pinned string
	// Err is why verification failed; nil for a mismatch with Pinned.
	Err error
}

func (e *CertificateError) Error() string {
	if e.Pinned != "" {
		return fmt.Sprintf("camera certificate has fingerprint %s, not the pinned %s; if the camera's certificate was replaced, pin the new one with sourceFingerprint: %s",
			e.Fingerprint, e.Pinned, e.Fingerprint)
	}
	return fmt.Sprintf("camera certificate not trusted (%v); if this is the camera's own certificate, pin it with sourceFingerprint: %s",
		e.Err, e.Fingerprint)
}

// Unwrap gives ErrUntrustedCertificate and the verification error.
func (e *CertificateError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUntrustedCertificate}
	}
	return []error{ErrUntrustedCertificate, e.Err}
}

// Fingerprint is the lower-case hex SHA-256 of a certificate's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// tlsConfig verifies an rtsps:// camera. Without a pin, crypto/tls
// verifies the chain against RootCAs (nil: the system roots) and the
// host name, as a browser would; gortsplib sets ServerName to the URL's
// host. With a pin, the pin replaces chain and name checks (a self-signed
// camera has neither), as MediaMTX's sourceFingerprint does.
func (s *RTSP) tlsConfig() *tls.Config {
	if s.Fingerprint == "" {
		return &tls.Config{RootCAs: s.RootCAs}
	}
	pinned := s.Fingerprint
	return &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection checks the pinned fingerprint instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &CertificateError{Pinned: pinned, Err: errors.New("no certificate presented")}
			}
			if fp := Fingerprint(cs.PeerCertificates[0]); fp != pinned {
				return &CertificateError{Fingerprint: fp, Pinned: pinned}
			}
			return nil
		},
	}
}

// certificateError turns crypto/tls's verification failure into a
// *CertificateError. It relies on gortsplib v4.16.2 returning the error of
// the TLS handshake (run by its first request) wrapped or as is; the
// source's TLS tests fail if a later version stops doing so.
func certificateError(err error) error {
	var ce *CertificateError
	if errors.As(err, &ce) {
		return err
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		return &CertificateError{Fingerprint: Fingerprint(ve.UnverifiedCertificates[0]), Err: ve.Err}
	}
	return err
}

// srtpHint explains a failed SETUP of an rtsps:// camera that offers SRTP
// (RTP/SAVP) without a MIKEY key in its SDP: gortsplib v4.16.2 takes SRTP
// keys only by MIKEY (RFC 3830), in the SDP or the SETUP reply, as
// MediaMTX's rtspEncryption sends them; keys by SDES (a=crypto) are not
// supported.
func srtpHint(u *base.URL, desc *description.Session, err error) error {
	if u.Scheme != "rtsps" || desc.KeyMgmtMikey != nil {
		return err
	}
	for _, m := range desc.Medias {
		if m.Secure && m.KeyMgmtMikey == nil {
			return &SRTPError{Err: err}
		}
	}
	return err
}

// SRTPError is a failed SETUP of a camera that offers SRTP without a
// MIKEY key in its SDP.
type SRTPError struct{ Err error }

func (e *SRTPError) Error() string {
	return fmt.Sprintf("%v (the camera offers SRTP, RTP/SAVP, without a MIKEY key in its SDP: if it sends its keys by SDES a=crypto, camgate cannot read it; its gortsplib v4.16.2 takes SRTP keys only by MIKEY, as MediaMTX sends them. Use rtsp://, or rtsps:// without SRTP on the camera)", e.Err)
}

func (e *SRTPError) Unwrap() []error { return []error{ErrSRTPKeyExchange, e.Err} }
