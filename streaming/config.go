package streaming

import (
	"time"
)

// Source kinds besides rtsp:// and rtsps:// URLs.
const (
	SourcePublisher = "publisher"
	SourceDemo      = "demo"
)

// PathConfig is a path entry with every default applied.
type PathConfig struct {
	// Source is an rtsp:// or rtsps:// URL, SourcePublisher or SourceDemo.
	Source string
	// SourceOnDemand pulls only while somebody reads.
	SourceOnDemand bool
	// StartTimeout bounds how long the first reader waits for an on-demand
	// source; default 10 s.
	StartTimeout time.Duration
	// CloseAfter is how long an on-demand source outlives its last reader;
	// default 10 s.
	CloseAfter time.Duration
	// RTSPTransport is automatic, tcp, udp or multicast.
	RTSPTransport string
	// ReadTimeout is how long a camera may stay silent; default 10 s.
	ReadTimeout time.Duration
	// MaxReaders caps readers (RTSP and WebRTC together); 0 is unlimited.
	MaxReaders int
	// SourceFingerprint pins the certificate of an rtsps:// source: the
	// lower-case hex SHA-256 of its DER. Empty: the certificate is
	// verified against the system roots.
	SourceFingerprint string
}

func (c PathConfig) withDefaults() PathConfig {
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.CloseAfter < 0 {
		c.CloseAfter = 0
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	return c
}

func (c PathConfig) isPublisher() bool { return c.Source == SourcePublisher }

// onDemand is true for sources pulled only while read. Publisher paths have
// no source to pull.
func (c PathConfig) onDemand() bool { return c.SourceOnDemand && !c.isPublisher() }
