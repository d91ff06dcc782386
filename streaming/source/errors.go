package source

import "errors"

var (
	// ErrUntrustedCertificate means an rtsps:// camera's certificate was
	// refused: it does not verify against the roots, or it is not the one
	// pinned by sourceFingerprint. The error is a *CertificateError.
	ErrUntrustedCertificate = errors.New("camera certificate not trusted")
	// ErrSRTPKeyExchange means an rtsps:// camera offers SRTP with a key
	// exchange the RTSP client cannot take (not MIKEY). The error is an
	// *SRTPError.
	ErrSRTPKeyExchange = errors.New("unsupported SRTP key exchange")
)
