package conf

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/camgate/camgate/internal/redact"
)

// Source kinds other than URLs.
const (
	SourcePublisher = "publisher"
	SourceDemo      = "demo"
	// CatchAll is the path entry applied to names no other entry matches.
	CatchAll = "all_others"
)

var pathNameRe = regexp.MustCompile(`^[A-Za-z0-9_.\-/]{1,64}$`)

// ValidatePathName checks a concrete path name (not a "~regexp" entry).
func ValidatePathName(name string) error {
	if !pathNameRe.MatchString(name) {
		return fmt.Errorf("invalid path name %q: use letters, digits, _ - . / (at most 64)", name)
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") || strings.Contains(name, "..") {
		return fmt.Errorf("invalid path name %q: empty segment or '..'", name)
	}
	return nil
}

// ValidatePathEntry checks a key of the paths map: a name, all_others or a
// "~regexp".
func ValidatePathEntry(name string) error {
	if name == CatchAll {
		return nil
	}
	if strings.HasPrefix(name, "~") {
		if _, err := regexp.Compile(name[1:]); err != nil {
			return fmt.Errorf("invalid path regexp %q: %w", name, err)
		}
		return nil
	}
	return ValidatePathName(name)
}

// Validate checks one path entry.
func (p PathConf) Validate() error {
	if err := ValidateSource(string(p.Source)); err != nil {
		return err
	}
	if p.RTSPTransport != nil {
		if err := validateTransport(*p.RTSPTransport); err != nil {
			return err
		}
	}
	if p.MaxReaders != nil && *p.MaxReaders < 0 {
		return fmt.Errorf("maxReaders: must be 0 (unlimited) or more")
	}
	if p.SourceOnDemandStartTimeout != nil && *p.SourceOnDemandStartTimeout <= 0 {
		return fmt.Errorf("sourceOnDemandStartTimeout: must be positive")
	}
	if p.ReadTimeout != nil && *p.ReadTimeout <= 0 {
		return fmt.Errorf("readTimeout: must be positive")
	}
	if p.SourceFingerprint != "" {
		if _, err := ParseFingerprint(string(p.SourceFingerprint)); err != nil {
			return err
		}
		if !strings.HasPrefix(strings.ToLower(string(p.Source)), "rtsps://") {
			return fmt.Errorf("sourceFingerprint: only meaningful with an rtsps:// source")
		}
	}
	return nil
}

// ValidateSource checks a source value: rtsp(s):// URL, publisher or demo.
func ValidateSource(s string) error {
	switch s {
	case SourcePublisher, SourceDemo:
		return nil
	case "":
		return fmt.Errorf("source: missing (rtsp://..., rtsps://..., publisher or demo)")
	}
	// A password with characters url.Parse refuses (space, '/', '#', ...)
	// is taken as written, as the RTSP source takes it.
	u, err := url.Parse(redact.EscapeUserinfo(s))
	if err != nil {
		return fmt.Errorf("source: invalid URL %q", redact.URL(s))
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fmt.Errorf("source: unsupported %q (want rtsp://, rtsps://, publisher or demo)", redact.URL(s))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("source: URL %q has no host", redact.URL(s))
	}
	return nil
}

func validateTransport(t string) error {
	switch t {
	case "automatic", "tcp", "udp", "multicast":
		return nil
	}
	return fmt.Errorf("rtspTransport: %q is not one of automatic, tcp, udp, multicast", t)
}

func validateAddr(key, a string, allowEmpty bool) error {
	if a == "" {
		if allowEmpty {
			return nil
		}
		return &Error{Key: key, Msg: "missing address (host:port or :port)"}
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid address %q (want host:port or :port)", a)}
	}
	return nil
}

// Validate checks the whole configuration; errors are *Error with the key set.
func (c *Config) Validate() error {
	switch c.Agent.LogLevel {
	case "debug", "info", "warn", "error", "trace":
	default:
		return &Error{Key: "agent.logLevel", Msg: fmt.Sprintf("%q is not one of debug, info, warn, error", c.Agent.LogLevel)}
	}
	switch c.Agent.LogFormat {
	case "console", "json":
	default:
		return &Error{Key: "agent.logFormat", Msg: fmt.Sprintf("%q is not one of console, json", c.Agent.LogFormat)}
	}
	if err := validateAddr("rtsp.address", c.RTSP.Address, false); err != nil {
		return err
	}
	if len(c.RTSP.Transports) == 0 {
		return &Error{Key: "rtsp.transports", Msg: "at least one of tcp, udp"}
	}
	for _, t := range c.RTSP.Transports {
		switch t {
		case "tcp":
		case "udp":
			if err := validateAddr("rtsp.rtpAddress", c.RTSP.RTPAddress, false); err != nil {
				return err
			}
			if err := validateAddr("rtsp.rtcpAddress", c.RTSP.RTCPAddress, false); err != nil {
				return err
			}
		default:
			return &Error{Key: "rtsp.transports", Msg: fmt.Sprintf("%q is not one of tcp, udp", t)}
		}
	}
	if g := c.Agent.GoGC; g < 0 || g > 10000 {
		return &Error{Key: "agent.goGC", Msg: fmt.Sprintf("%d: want 0 (the Go default) or a percentage from 1 to 10000", g)}
	}
	if q := c.RTSP.WriteQueueSize; q < 16 || q&(q-1) != 0 {
		return &Error{Key: "rtsp.writeQueueSize", Msg: "must be a power of two, at least 16"}
	}
	if err := validateAddr("webrtc.address", c.WebRTC.Address, true); err != nil {
		return err
	}
	if err := validateAddr("webrtc.iceUDPMuxAddress", c.WebRTC.ICEUDPMuxAddress, true); err != nil {
		return err
	}
	if err := validateAddr("webrtc.iceTCPMuxAddress", c.WebRTC.ICETCPMuxAddress, true); err != nil {
		return err
	}
	for i, s := range c.WebRTC.ICEServers {
		if !strings.HasPrefix(s.URL, "stun:") && !strings.HasPrefix(s.URL, "turn:") && !strings.HasPrefix(s.URL, "turns:") {
			return &Error{Key: fmt.Sprintf("webrtc.iceServers[%d].url", i), Msg: fmt.Sprintf("%q: want stun:, turn: or turns:", s.URL)}
		}
	}
	if err := validateAddr("api.address", c.API.Address, true); err != nil {
		return err
	}
	if err := c.Uplink.validate(); err != nil {
		return err
	}
	for i, u := range c.Auth.Users {
		if err := u.validate(); err != nil {
			return &Error{Key: fmt.Sprintf("auth.users[%d]", i), Msg: err.Error()}
		}
	}
	if err := validateTransport(c.PathDefaults.RTSPTransport); err != nil {
		return &Error{Key: "pathDefaults.rtspTransport", Msg: err.Error()}
	}
	if c.PathDefaults.SourceOnDemandStartTimeout <= 0 {
		return &Error{Key: "pathDefaults.sourceOnDemandStartTimeout", Msg: "must be positive"}
	}
	if c.PathDefaults.ReadTimeout <= 0 {
		return &Error{Key: "pathDefaults.readTimeout", Msg: "must be positive"}
	}
	if c.PathDefaults.MaxReaders < 0 {
		return &Error{Key: "pathDefaults.maxReaders", Msg: "must be 0 (unlimited) or more"}
	}
	for name, p := range c.Paths {
		if err := ValidatePathEntry(name); err != nil {
			return &Error{Key: "paths." + name, Msg: err.Error()}
		}
		if err := p.Validate(); err != nil {
			key := "paths." + name
			if k, _, ok := strings.Cut(err.Error(), ":"); ok && !strings.Contains(k, " ") {
				key += "." + k
			}
			return &Error{Key: key, Msg: err.Error()}
		}
	}
	return nil
}

func (u Uplink) validate() error {
	if u.Broker != "" {
		p, err := url.Parse(string(u.Broker))
		if err != nil {
			return &Error{Key: "uplink.broker", Msg: fmt.Sprintf("invalid URL %q (percent-encode special characters of a password, or use uplink.password)", redact.URL(string(u.Broker)))}
		}
		switch p.Scheme {
		case "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss":
		default:
			return &Error{Key: "uplink.broker", Msg: fmt.Sprintf("scheme %q: want tcp://, ssl://, ws:// or wss://", p.Scheme)}
		}
		if p.Host == "" {
			return &Error{Key: "uplink.broker", Msg: "missing host"}
		}
	}
	if u.TopicPrefix == "" || strings.ContainsAny(u.TopicPrefix, "#+") {
		return &Error{Key: "uplink.topicPrefix", Msg: "must be non-empty and free of MQTT wildcards"}
	}
	if u.HealthInterval.D() < 1e9 {
		return &Error{Key: "uplink.healthInterval", Msg: "must be at least 1s"}
	}
	if (u.TLS.Cert == "") != (u.TLS.Key == "") {
		return &Error{Key: "uplink.tls", Msg: "cert and key go together"}
	}
	if u.Outbox.MaxMessages <= 0 {
		return &Error{Key: "uplink.outbox.maxMessages", Msg: "must be positive"}
	}
	if u.Outbox.MaxBytes < 4096 {
		return &Error{Key: "uplink.outbox.maxBytes", Msg: "must be at least 4KiB"}
	}
	return nil
}

func (u User) validate() error {
	if u.User == "" {
		return fmt.Errorf("user: missing (a name or \"any\")")
	}
	if u.User != "any" && u.Pass == "" {
		return fmt.Errorf("pass: user %q needs a password", u.User)
	}
	p := string(u.Pass)
	if strings.HasPrefix(p, "sha256:") || strings.HasPrefix(p, "argon2:") {
		if len(p) < 10 {
			return fmt.Errorf("pass: malformed hash")
		}
	}
	for _, ip := range u.IPs {
		if _, _, err := net.ParseCIDR(ip); err != nil && net.ParseIP(ip) == nil {
			return fmt.Errorf("ips: %q is neither an IP nor a CIDR", ip)
		}
	}
	for _, pm := range u.Permissions {
		switch pm.Action {
		case "read", "publish", "api", "playback":
		default:
			return fmt.Errorf("permissions: action %q is not one of read, publish, api", pm.Action)
		}
		if pm.Path != "" {
			if err := ValidatePathEntry(pm.Path); err != nil {
				return fmt.Errorf("permissions: %w", err)
			}
		}
	}
	return nil
}
