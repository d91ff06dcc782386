package webrtc

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pion/stun/v4"
	"github.com/rs/zerolog"
)

// ICEServer is a STUN or TURN server handed to the peer connections.
type ICEServer struct {
	URL      string // stun:host:port, turn:host:port?transport=udp, turns:...
	Username string
	Password string // never logged
}

// Options configure a Server. Zero values take the stated defaults, except
// for the booleans, which the agent sets from the config file (whose default
// for IPsFromInterfaces is true).
type Options struct {
	// Address is the HTTP listen address for WHEP and the player page; default ":8889".
	Address string
	// ICEUDPMuxAddress is the single UDP port every peer connection shares; default ":8189".
	ICEUDPMuxAddress string
	// ICETCPMuxAddress, when set, also accepts ICE over TCP on this address; default "" (off).
	ICETCPMuxAddress string
	// IPsFromInterfaces announces the addresses of the usable interfaces as
	// host candidates. Virtual adapters (docker*, veth*, br-*, virbr*, ...),
	// loopback and interfaces that are down are skipped unless named in
	// IPsFromInterfacesList.
	IPsFromInterfaces bool
	// IPsFromInterfacesList restricts IPsFromInterfaces to these interface
	// names; empty = every usable interface.
	IPsFromInterfacesList []string
	// AdditionalHosts are IPs or host names announced as host candidates on
	// the ICE UDP port (NAT 1:1, VPN). Names are resolved when the server starts.
	AdditionalHosts []string
	// ICEServers are STUN/TURN servers; default none (LAN only).
	ICEServers []ICEServer

	// Paths gives access to streams; required.
	Paths Paths
	// Lister lists paths for GET /; nil serves an empty list.
	Lister PathLister
	// Auth checks credentials; nil allows everybody.
	Auth Authenticator

	// HLSPort is the port of the LL-HLS server (hls.address) the pages
	// fall back to when WebRTC yields no picture, and link; 0 = no HLS.
	HLSPort int
	// RTSPPort is the RTSP server's port, for the console's copyable
	// URLs; 0 = none shown.
	RTSPPort int
	// Box returns the box's own figures for the console; nil = none
	// shown. It is called at most once per console poll (2 s).
	Box func(ctx context.Context) Box

	// HandshakeTimeout bounds ICE plus DTLS after the answer; default 10s.
	HandshakeTimeout time.Duration
	// ICEDisconnectedTimeout, ICEFailedTimeout and ICEKeepalive tune how fast
	// a vanished peer is noticed; defaults 4s, 8s and 2s.
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	ICEKeepalive           time.Duration
	// GatherTimeout bounds candidate gathering before the answer is sent
	// (it matters only with STUN/TURN servers); default 2s.
	GatherTimeout time.Duration
	// WriteQueueSize is the number of packets queued per peer before it
	// starts losing packets; default 512.
	WriteQueueSize int
	// AllowOrigin is the CORS Access-Control-Allow-Origin value; default "*".
	AllowOrigin string

	// MaxConns and MaxConnsPerIP cap the open HTTP connections, in total
	// (the excess gets 503 at once) and from one client address (429);
	// the ICE-TCP listener has the same caps of its own (the excess is
	// closed). 0 = no cap. The agent passes webrtc.maxConnections and
	// webrtc.maxConnectionsPerIP.
	MaxConns, MaxConnsPerIP int
	// MaxPendingSessions caps the offers being answered plus the sessions
	// answered whose peers have not connected yet; further offers get 503
	// at once. A session that does not connect within HandshakeTimeout is
	// closed and gives its place back. 0 = no cap.
	MaxPendingSessions int
	// ReadHeaderTimeout bounds reading a request's header; default 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request (header and body);
	// default 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, counted from when the
	// handler has it ready (an offer may wait for an on-demand source
	// longer than this); default 10s.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a request; default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header; default 16 KiB.
	MaxHeaderBytes int
	// PlaybackAddress is the recordings' listener (playback.address): when
	// set, the player page shows a timeline of the path's recorded spans
	// that plays them from it; default "" (no timeline).
	PlaybackAddress string
	// Logger is the parent logger; the server adds component=webrtc.
	Logger zerolog.Logger

	// interfaces lists the machine's interfaces; default net.Interfaces. Tests replace it.
	interfaces func() ([]netInterface, error)
}

func (o *Options) setDefaults() error {
	if o.Paths == nil {
		return fmt.Errorf("webrtc options: Paths is required")
	}
	if o.Address == "" {
		o.Address = ":8889"
	}
	if o.ICEUDPMuxAddress == "" {
		o.ICEUDPMuxAddress = ":8189"
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.ICEDisconnectedTimeout <= 0 {
		o.ICEDisconnectedTimeout = 4 * time.Second
	}
	if o.ICEFailedTimeout <= 0 {
		o.ICEFailedTimeout = 8 * time.Second
	}
	if o.ICEKeepalive <= 0 {
		o.ICEKeepalive = 2 * time.Second
	}
	if o.GatherTimeout <= 0 {
		o.GatherTimeout = 2 * time.Second
	}
	if o.WriteQueueSize <= 0 {
		o.WriteQueueSize = 512
	}
	if o.AllowOrigin == "" {
		o.AllowOrigin = "*"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	// guard.ListenHTTP fills the other HTTP timeouts and MaxHeaderBytes.
	if o.interfaces == nil {
		o.interfaces = systemInterfaces
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("webrtc options: %w", err)
	}
	return nil
}

// Validate checks the settings a configuration gives (candidates, STUN and
// TURN servers) without binding or resolving anything. New runs it; the
// agent runs it when it loads the configuration, so that check-config
// refuses what New would, and what every WHEP session would fail on.
// Errors are *OptionError.
func (o Options) Validate() error {
	if !o.IPsFromInterfaces && len(o.AdditionalHosts) == 0 && len(o.ICEServers) == 0 {
		return &OptionError{Option: "ipsFromInterfaces", Err: ErrNoCandidates}
	}
	for i, s := range o.ICEServers {
		if field, err := s.validate(); err != nil {
			return &OptionError{Option: fmt.Sprintf("iceServers[%d].%s", i, field), Err: err}
		}
	}
	return nil
}

// validate applies pion's rules for an ICE server (which pion would only
// apply when a peer connection is made) and names the field at fault.
func (s ICEServer) validate() (field string, err error) {
	u, err := stun.ParseURI(s.URL)
	if err != nil {
		return "url", fmt.Errorf("%q: %w (want stun:host[:port], turn:host[:port][?transport=udp|tcp] or turns:...)", s.URL, err)
	}
	if u.Port < 1 || u.Port > 65535 {
		return "url", fmt.Errorf("%q: port %d is not from 1 to 65535", s.URL, u.Port)
	}
	if (u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS) && s.Username == "" {
		return "username", fmt.Errorf("%q: a TURN server needs credentials (username and password)", s.URL)
	}
	return "", nil
}

// netInterface is what candidate selection needs to know of an interface.
type netInterface struct {
	Name  string
	Up    bool
	Loop  bool
	Addrs []net.IP
}

func systemInterfaces() ([]netInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]netInterface, 0, len(ifs))
	for _, ifc := range ifs {
		ni := netInterface{
			Name: ifc.Name,
			Up:   ifc.Flags&net.FlagUp != 0,
			Loop: ifc.Flags&net.FlagLoopback != 0,
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ni.Addrs = append(ni.Addrs, ipn.IP)
			}
		}
		out = append(out, ni)
	}
	return out, nil
}
