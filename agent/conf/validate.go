package conf

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/camgate/camgate/internal/guard"
	"github.com/camgate/camgate/internal/redact"
)

// Source kinds other than URLs.
const (
	SourcePublisher = "publisher"
	SourceDemo      = "demo"
	// CatchAll is the path entry applied to names no other entry matches.
	CatchAll = "all_others"
)

// ValidatePathEntry checks a key of the paths map: a name (the rule of
// guard.ValidatePathName), all_others or a "~regexp".
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
	return guard.ValidatePathName(name)
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
	if p.SourceRetryMax != nil {
		if err := validateRetryMax(*p.SourceRetryMax); err != nil {
			return fmt.Errorf("sourceRetryMax: %w", err)
		}
	}
	if p.RunOnDemand != "" && p.Source != SourcePublisher {
		return fmt.Errorf("runOnDemand: needs source: publisher (the command publishes to the path; a camera URL is pulled on demand by itself)")
	}
	if p.RunOnDemandStartTimeout != nil && *p.RunOnDemandStartTimeout <= 0 {
		return fmt.Errorf("runOnDemandStartTimeout: must be positive")
	}
	if p.SourceFingerprint != "" {
		if _, err := ParseFingerprint(string(p.SourceFingerprint)); err != nil {
			return fmt.Errorf("sourceFingerprint: %w", err)
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
	if err := checkURLPort(u); err != nil {
		return fmt.Errorf("source: URL %q: %w", redact.URL(s), err)
	}
	return nil
}

// checkURLPort refuses a port url.Parse lets through but no dial can use.
func checkURLPort(u *url.URL) error {
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("port %s is not from 1 to 65535", p)
		}
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

// validateHostName accepts an IP address or a DNS name, without port.
func validateHostName(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 || !hostNameRe.MatchString(h) {
		return fmt.Errorf("%q: want a host name or an IP address, without scheme or port", h)
	}
	return nil
}

var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

func validateAddr(key, a string, allowEmpty bool) error {
	if a == "" {
		if allowEmpty {
			return nil
		}
		return &Error{Key: key, Msg: "missing address (host:port or :port)"}
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid address %q (want host:port or :port)", a)}
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid port %q in %q: want a number from 0 to 65535", port, a)}
	}
	return nil
}

// defaultICEUDPMuxAddress is what the WebRTC server listens on when
// webrtc.iceUDPMuxAddress is empty.
const defaultICEUDPMuxAddress = ":8189"

// listener is a socket the agent binds, named by its config key.
type listener struct {
	key, network, addr string
}

// listeners are the sockets the configuration makes the agent bind.
func (c *Config) listeners() []listener {
	ls := []listener{{"rtsp.address", "tcp", c.RTSP.Address}}
	if slices.Contains(c.RTSP.Transports, "udp") {
		ls = append(ls, listener{"rtsp.rtpAddress", "udp", c.RTSP.RTPAddress}, listener{"rtsp.rtcpAddress", "udp", c.RTSP.RTCPAddress})
	}
	if w := c.WebRTC; w.Address != "" {
		ice := w.ICEUDPMuxAddress
		if ice == "" {
			ice = defaultICEUDPMuxAddress
		}
		ls = append(ls, listener{"webrtc.address", "tcp", w.Address}, listener{"webrtc.iceUDPMuxAddress", "udp", ice})
		if w.ICETCPMuxAddress != "" {
			ls = append(ls, listener{"webrtc.iceTCPMuxAddress", "tcp", w.ICETCPMuxAddress})
		}
	}
	if c.HLS.Address != "" {
		ls = append(ls, listener{"hls.address", "tcp", c.HLS.Address})
	}
	if c.API.Address != "" {
		ls = append(ls, listener{"api.address", "tcp", c.API.Address})
	}
	if c.Playback.Address != "" {
		ls = append(ls, listener{"playback.address", "tcp", c.Playback.Address})
	}
	return ls
}

// checkClashes refuses two listeners of one protocol on the same port of
// overlapping addresses: the second bind would fail at start.
func checkClashes(ls []listener) error {
	for j := range ls {
		for i := range j {
			a, b := ls[i], ls[j]
			if a.network != b.network {
				continue
			}
			ha, pa := splitPort(a.addr)
			hb, pb := splitPort(b.addr)
			if pa != pb || pa == 0 || !hostsOverlap(ha, hb) {
				continue
			}
			clash := func(x, y listener) *Error {
				return &Error{Key: x.key, Msg: fmt.Sprintf("%s port %d of %q is also bound by %s (%q)", x.network, pa, x.addr, y.key, y.addr)}
			}
			e := clash(b, a)
			e.alt = clash(a, b)
			return e
		}
	}
	return nil
}

// splitPort splits an address validateAddr accepted.
func splitPort(addr string) (host string, port uint64) {
	host, ps, _ := net.SplitHostPort(addr)
	port, _ = strconv.ParseUint(ps, 10, 16)
	return host, port
}

// hostsOverlap tells whether listening on both hosts (same port and
// protocol) clashes. An empty host or [::] listens on every address of
// both families (Go binds dual-stack), 0.0.0.0 on every IPv4 one;
// "localhost" is 127.0.0.1, the address Go binds for it. Other names
// clash with the wildcards (they may resolve to anything) and with
// themselves.
func hostsOverlap(a, b string) bool {
	ipa, ipb := hostIP(a), hostIP(b)
	for _, p := range [][2]net.IP{{ipa, ipb}, {ipb, ipa}} {
		x, y := p[0], p[1]
		if x != nil && x.IsUnspecified() {
			if x.To4() == nil || y == nil || y.To4() != nil {
				return true
			}
		}
	}
	if ipa != nil && ipb != nil {
		return ipa.Equal(ipb)
	}
	return strings.EqualFold(a, b)
}

func hostIP(h string) net.IP {
	switch strings.ToLower(h) {
	case "":
		return net.IPv6unspecified
	case "localhost":
		return net.IPv4(127, 0, 0, 1)
	}
	return net.ParseIP(h)
}

// checkRTPPorts applies gortsplib's rule for the server's UDP ports: RTP
// on an even port, RTCP on the next one.
func checkRTPPorts(rtp, rtcp string) error {
	_, p := splitPort(rtp)
	_, c := splitPort(rtcp)
	if p%2 != 0 {
		return &Error{Key: "rtsp.rtpAddress", Msg: fmt.Sprintf("RTP port %d must be even (RTCP takes the next one)", p)}
	}
	if c != p+1 {
		e := &Error{Key: "rtsp.rtcpAddress", Msg: fmt.Sprintf("RTCP port %d must be the RTP port plus one, %d (rtsp.rtpAddress is %q)", c, p+1, rtp)}
		e.alt = &Error{Key: "rtsp.rtpAddress", Msg: fmt.Sprintf("RTP port %d needs rtsp.rtcpAddress on port %d; it is %q", p, p+1, rtcp)}
		return e
	}
	return nil
}

// Validate checks the whole configuration; errors are *Error with the key set.
func (c *Config) Validate() error {
	switch c.Agent.LogLevel {
	case "debug", "info", "warn", "error", "trace":
	default:
		return &Error{Key: "agent.logLevel", Msg: fmt.Sprintf("%q is not one of trace, debug, info, warn, error", c.Agent.LogLevel)}
	}
	switch c.Agent.LogFormat {
	case "console", "json":
	default:
		return &Error{Key: "agent.logFormat", Msg: fmt.Sprintf("%q is not one of console, json", c.Agent.LogFormat)}
	}
	if c.Agent.LogMaxSizeMB < 0 {
		return &Error{Key: "agent.logMaxSizeMB", Msg: "must be 0 (the default, 10) or more"}
	}
	if c.Agent.LogMaxBackups < 0 {
		return &Error{Key: "agent.logMaxBackups", Msg: "must be 0 (the default, 5) or more"}
	}
	if c.Agent.GoMemLimit > MaxByteSize {
		return &Error{Key: "agent.goMemLimit", Msg: fmt.Sprintf("too large (at most %d bytes)", uint64(MaxByteSize))}
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
	if slices.Contains(c.RTSP.Transports, "udp") {
		if err := checkRTPPorts(c.RTSP.RTPAddress, c.RTSP.RTCPAddress); err != nil {
			return err
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
	// webrtc.iceServers are checked by the WebRTC server's own rule (the
	// agent adds it to Load).
	if err := validateAddr("hls.address", c.HLS.Address, true); err != nil {
		return err
	}
	if err := validateAddr("api.address", c.API.Address, true); err != nil {
		return err
	}
	if err := validateAddr("playback.address", c.Playback.Address, true); err != nil {
		return err
	}
	if err := checkClashes(c.listeners()); err != nil {
		return err
	}
	for _, lim := range []struct {
		key string
		n   int
	}{
		{"rtsp.maxConnections", c.RTSP.MaxConnections}, {"rtsp.maxConnectionsPerIP", c.RTSP.MaxConnectionsPerIP},
		{"webrtc.maxConnections", c.WebRTC.MaxConnections}, {"webrtc.maxConnectionsPerIP", c.WebRTC.MaxConnectionsPerIP},
		{"webrtc.maxPendingSessions", c.WebRTC.MaxPendingSessions},
		{"hls.maxConnections", c.HLS.MaxConnections}, {"hls.maxConnectionsPerIP", c.HLS.MaxConnectionsPerIP},
		{"api.maxConnections", c.API.MaxConnections}, {"api.maxConnectionsPerIP", c.API.MaxConnectionsPerIP},
		{"playback.maxConnections", c.Playback.MaxConnections}, {"playback.maxConnectionsPerIP", c.Playback.MaxConnectionsPerIP},
	} {
		if lim.n < 0 {
			return &Error{Key: lim.key, Msg: fmt.Sprintf("%d: want 0 (no cap) or more", lim.n)}
		}
	}
	for i, h := range c.API.AllowedHosts {
		if err := validateHostName(h); err != nil {
			return &Error{Key: fmt.Sprintf("api.allowedHosts[%d]", i), Msg: err.Error()}
		}
	}
	if err := c.Uplink.validate(); err != nil {
		return err
	}
	if m := c.Auth.Argon2MaxMemory; m < 1<<20 {
		return &Error{Key: "auth.argon2MaxMemory", Msg: fmt.Sprintf("%s: want at least 1MiB", m)}
	}
	if d := c.Auth.Argon2QueueTimeout.D(); d <= 0 || d > time.Minute {
		return &Error{Key: "auth.argon2QueueTimeout", Msg: fmt.Sprintf("%s: want more than 0 and at most 1m", d)}
	}
	if err := c.Update.validate(); err != nil {
		return err
	}
	for i, u := range c.Auth.Users {
		if err := u.validate(fmt.Sprintf("auth.users[%d]", i)); err != nil {
			return err
		}
	}
	if err := validateTransport(c.PathDefaults.RTSPTransport); err != nil {
		return &Error{Key: "pathDefaults.rtspTransport", Msg: strings.TrimPrefix(err.Error(), "rtspTransport: ")}
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
	if err := validateRetryMax(c.PathDefaults.SourceRetryMax); err != nil {
		return &Error{Key: "pathDefaults.sourceRetryMax", Msg: err.Error()}
	}
	if c.PathDefaults.RunOnDemandStartTimeout <= 0 {
		return &Error{Key: "pathDefaults.runOnDemandStartTimeout", Msg: "must be positive"}
	}
	for name, p := range c.Paths {
		if err := ValidatePathEntry(name); err != nil {
			return &Error{Key: "paths." + name, Msg: err.Error()}
		}
		if p.RunOnInit != "" && (name == CatchAll || strings.HasPrefix(name, "~")) {
			return &Error{Key: "paths." + name + ".runOnInit", Msg: "not on all_others or a ~regexp entry (no path of it exists until somebody asks for one); give the command a path of its own"}
		}
		if err := p.Validate(); err != nil {
			// "source: missing" names its key first: it goes into Key, so
			// the message does not say "paths.cam.source: source: ...".
			key, msg := "paths."+name, err.Error()
			if k, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(k, " ") {
				key, msg = key+"."+k, rest
			}
			return &Error{Key: key, Msg: msg}
		}
	}
	return nil
}

// validate checks the uplink section. The broker URL, the topic prefix
// and the TLS files are checked by the uplink's own rules (the agent adds
// them to Load).
func (u Uplink) validate() error {
	if u.HealthInterval.D() < 1e9 {
		return &Error{Key: "uplink.healthInterval", Msg: "must be at least 1s"}
	}
	if u.TLS.Cert != "" && u.TLS.Key == "" {
		return &Error{Key: "uplink.tls.cert", Msg: "needs uplink.tls.key as well"}
	}
	if u.TLS.Key != "" && u.TLS.Cert == "" {
		return &Error{Key: "uplink.tls.key", Msg: "needs uplink.tls.cert as well"}
	}
	if u.Outbox.MaxMessages <= 0 {
		return &Error{Key: "uplink.outbox.maxMessages", Msg: "must be positive"}
	}
	if u.Outbox.MaxBytes < 4096 {
		return &Error{Key: "uplink.outbox.maxBytes", Msg: "must be at least 4KiB"}
	}
	return nil
}

// validate checks one user; key is "auth.users[i]". The password's hash
// format is checked by the authenticator's own rule (the agent adds it to
// Load).
func (u User) validate(key string) error {
	if u.User == "" {
		return &Error{Key: key + ".user", Msg: `missing (a name or "any")`}
	}
	if u.User != "any" && u.Pass == "" {
		return &Error{Key: key + ".pass", Msg: fmt.Sprintf("user %q needs a password", u.User)}
	}
	for i, ip := range u.IPs {
		if _, _, err := net.ParseCIDR(ip); err != nil && net.ParseIP(ip) == nil {
			return &Error{Key: fmt.Sprintf("%s.ips[%d]", key, i), Msg: fmt.Sprintf("%q is neither an IP nor a CIDR", ip)}
		}
	}
	for i, pm := range u.Permissions {
		pk := fmt.Sprintf("%s.permissions[%d]", key, i)
		switch pm.Action {
		case "read", "publish", "api", "playback":
		default:
			return &Error{Key: pk + ".action", Msg: fmt.Sprintf("%q is not one of read, publish, api, playback", pm.Action)}
		}
		if pm.Path != "" {
			if err := ValidatePathEntry(pm.Path); err != nil {
				return &Error{Key: pk + ".path", Msg: err.Error()}
			}
		}
	}
	return nil
}

func (u Update) validate() error {
	for i, k := range u.PublicKeys {
		if _, err := ParsePublicKey(k); err != nil {
			return &Error{Key: fmt.Sprintf("update.publicKeys[%d]", i), Msg: err.Error()}
		}
	}
	if t := u.TrialTimeout.D(); t < time.Second || t > time.Hour {
		return &Error{Key: "update.trialTimeout", Msg: "must be between 1s and 1h"}
	}
	return nil
}

// ParsePublicKey reads a minisign public key: the base64 line of a
// minisign.pub ("RW..."), or the whole file with its comment line.
func ParsePublicKey(s string) (minisign.PublicKey, error) {
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return k, fmt.Errorf("%q is not a minisign public key (want the base64 line of minisign.pub, RW...)", s)
	}
	return k, nil
}

// minRetryMax keeps a camera that answers but fails from being hammered.
const minRetryMax = 100 * time.Millisecond

func validateRetryMax(d Duration) error {
	if d.D() < minRetryMax {
		return fmt.Errorf("must be at least %s", minRetryMax)
	}
	return nil
}
