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
	// RetryMax caps the wait between reconnect attempts of a failed source
	// (sourceRetryMax); default the manager's RetryMax (5 s). A camera
	// that comes back is retried sooner: its port is probed in between.
	RetryMax time.Duration

	// RunOnInit is a command run while the path exists (not for dynamic
	// paths); RunOnInitRestart starts it again when it exits.
	RunOnInit        string
	RunOnInitRestart bool
	// RunOnDemand is a command started when a reader asks for a publisher
	// path nobody publishes to; the reader waits up to
	// RunOnDemandStartTimeout (default 10 s) for the command to publish.
	// It is stopped RunOnDemandCloseAfter after the last reader left.
	RunOnDemand             string
	RunOnDemandRestart      bool
	RunOnDemandStartTimeout time.Duration
	RunOnDemandCloseAfter   time.Duration

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
	if c.RunOnDemandStartTimeout <= 0 {
		c.RunOnDemandStartTimeout = 10 * time.Second
	}
	if c.RunOnDemandCloseAfter < 0 {
		c.RunOnDemandCloseAfter = 0
	}
	return c
}

// onDemandCommand is true for publisher paths that start a command for
// their first reader.
func (c PathConfig) onDemandCommand() bool { return c.isPublisher() && c.RunOnDemand != "" }

func (c PathConfig) isPublisher() bool { return c.Source == SourcePublisher }

// onDemand is true for sources pulled only while read. Publisher paths have
// no source to pull.
func (c PathConfig) onDemand() bool { return c.SourceOnDemand && !c.isPublisher() }
