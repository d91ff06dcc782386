package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/camgate/camgate/internal/guard"
)

// virtualPrefixes name adapters whose addresses a browser on the LAN can
// never reach: container and VM bridges. Matched case-insensitively.
var virtualPrefixes = []string{
	"docker", "veth", "br-", "virbr", "vmnet", "vboxnet", "cni", "flannel",
	"cali", "kube-", "lxcbr", "lxdbr", "podman", "vethernet", "virtualbox",
	"vmware", "hyper-v", "zt",
}

func isVirtual(name string) bool {
	n := strings.ToLower(name)
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// iceStack is the part of the server shared by every peer connection: the
// sockets, the candidate policy and the pion API built from them.
//
// The sockets are bound and the settings checked when the server starts;
// the pion side (the muxes reading the sockets, the media engine,
// interceptors and API) is built by the first WHEP session and kept. A box
// nobody watches over WebRTC then never runs that code: 0.8 MB less
// resident memory at rest. The first session pays about a millisecond.
type iceStack struct {
	iceServers []pwebrtc.ICEServer

	udpConn net.PacketConn
	batch   *batchConn      // udpConn, with writes batched per peer
	tcpLn   *guard.Listener // nil unless ICETCPMuxAddress is set

	mu     sync.Mutex
	build  func() error // builds api and the muxes; nil once done
	closed bool
	api    *pwebrtc.API
	udpMux *hostUDPMux
	tcpMux *ice.TCPMuxDefault
}

// peerAPI returns the pion API, building it on first use.
func (s *iceStack) peerAPI() (*pwebrtc.API, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("webrtc server closed")
	}
	if s.build != nil {
		if err := s.build(); err != nil {
			return nil, err
		}
		s.build = nil
	}
	return s.api, nil
}

// hostUDPMux is pion's UDP mux on one socket, announcing the addresses
// camgate chooses instead of every address of the machine.
type hostUDPMux struct {
	*ice.UDPMuxDefault
	addrs func() []net.Addr
}

func (m *hostUDPMux) GetListenAddresses() []net.Addr { return m.addrs() }

// candidatePolicy decides which addresses are announced as host candidates.
type candidatePolicy struct {
	fromInterfaces bool
	only           []string
	interfaces     func() ([]netInterface, error)
	bound          net.IP // the UDP socket's IP; unspecified for all
	dualStack      bool
	port           int
	// placeholders are the local addresses the rewrite rules replace with
	// additionalHosts, one per address family that has additional hosts.
	placeholders []net.IP
	log          zerolog.Logger
}

// usable says whether an interface's addresses may be announced.
func (p *candidatePolicy) usable(name string, up, loop bool) bool {
	if len(p.only) > 0 {
		return slices.Contains(p.only, name)
	}
	return up && !loop && !isVirtual(name)
}

func (p *candidatePolicy) usableIP(ip net.IP) bool {
	if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	if ip.To4() == nil && !p.dualStack {
		return false
	}
	return true
}

// hostAddrs lists the UDP host candidates; it runs for every gathering so
// an address that changes (DHCP) is picked up by the next session.
func (p *candidatePolicy) hostAddrs() []net.Addr {
	var out []net.Addr
	if p.fromInterfaces {
		if !p.bound.IsUnspecified() {
			out = append(out, &net.UDPAddr{IP: p.bound, Port: p.port})
		} else if ifs, err := p.interfaces(); err != nil {
			p.log.Warn().Err(err).Msg("cannot list interfaces; announcing additional hosts only")
		} else {
			for _, ifc := range ifs {
				if !p.usable(ifc.Name, ifc.Up, ifc.Loop) {
					continue
				}
				for _, ip := range ifc.Addrs {
					if p.usableIP(ip) && (!ip.IsLoopback() || len(p.only) > 0) {
						out = append(out, &net.UDPAddr{IP: ip, Port: p.port})
					}
				}
			}
		}
	}
	for _, ip := range p.placeholders {
		out = append(out, &net.UDPAddr{IP: ip, Port: p.port})
	}
	return out
}

// resolveHosts turns additionalHosts into IPs. A name that does not resolve
// is logged and skipped: the box must start without DNS.
func resolveHosts(ctx context.Context, hosts []string, log zerolog.Logger) (v4, v6 []string) {
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		ips := []net.IP{net.ParseIP(h)}
		if ips[0] == nil {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			addrs, err := net.DefaultResolver.LookupIPAddr(rctx, h)
			cancel()
			if err != nil {
				log.Warn().Err(err).Str("host", h).Msg("additional host does not resolve; not announced")
				continue
			}
			ips = ips[:0]
			for _, a := range addrs {
				ips = append(ips, a.IP)
			}
		}
		for _, ip := range ips {
			if ip.To4() != nil {
				v4 = append(v4, ip.To4().String())
			} else {
				v6 = append(v6, ip.String())
			}
		}
	}
	return slices.Compact(v4), slices.Compact(v6)
}

func newICEStack(o *Options, log zerolog.Logger) (_ *iceStack, err error) {
	s := &iceStack{}
	defer func() {
		if err != nil {
			_ = s.close()
		}
	}()

	s.udpConn, err = net.ListenPacket("udp", o.ICEUDPMuxAddress)
	if err != nil {
		return nil, fmt.Errorf("listen ice udp %s: %w", o.ICEUDPMuxAddress, err)
	}
	uc, ok := s.udpConn.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("listen ice udp %s: not a UDP socket", o.ICEUDPMuxAddress)
	}
	if s.batch, err = newBatchConn(uc); err != nil {
		return nil, fmt.Errorf("ice udp socket: %w", err)
	}
	la := uc.LocalAddr().(*net.UDPAddr)
	pol := &candidatePolicy{
		fromInterfaces: o.IPsFromInterfaces,
		only:           o.IPsFromInterfacesList,
		interfaces:     o.interfaces,
		bound:          la.IP,
		dualStack:      la.IP.To4() == nil, // [::] accepts both families
		port:           la.Port,
		log:            log,
	}
	if la.IP == nil {
		pol.bound = net.IPv6unspecified
	}

	lf := pionLoggerFactory{log: log}
	se := pwebrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(o.ICEDisconnectedTimeout, o.ICEFailedTimeout, o.ICEKeepalive)
	se.SetInterfaceFilter(func(name string) bool {
		// Used for TCP candidates: the interface list filtered the same way.
		return o.IPsFromInterfaces && pol.usable(name, true, false)
	})
	se.SetIPFilter(pol.usableIP)
	if slices.ContainsFunc(o.IPsFromInterfacesList, func(n string) bool { return strings.HasPrefix(n, "lo") }) {
		se.SetIncludeLoopbackCandidate(true)
	}

	// additionalHosts: a rewrite rule per family replaces a placeholder local
	// address with the hosts, so they are announced exactly once each,
	// whether or not interface addresses are announced too.
	v4, v6 := resolveHosts(context.Background(), o.AdditionalHosts, log)
	var rules []pwebrtc.ICEAddressRewriteRule
	addRule := func(hosts []string, unspecified net.IP) {
		if len(hosts) == 0 {
			return
		}
		local := unspecified
		if !pol.bound.IsUnspecified() {
			local = pol.bound
		}
		pol.placeholders = append(pol.placeholders, local)
		rules = append(rules, pwebrtc.ICEAddressRewriteRule{
			External:        hosts,
			Local:           local.String(),
			AsCandidateType: pwebrtc.ICECandidateTypeHost,
			Mode:            pwebrtc.ICEAddressRewriteReplace,
		})
	}
	if pol.bound.To4() != nil || pol.bound.IsUnspecified() {
		addRule(v4, net.IPv4zero)
	}
	if pol.dualStack {
		addRule(v6, net.IPv6unspecified)
	}
	if len(rules) > 0 {
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return nil, fmt.Errorf("ice address rewrite rules: %w", err)
		}
	}
	if !pol.fromInterfaces && len(pol.placeholders) == 0 && len(o.ICEServers) == 0 {
		return nil, errors.New("no host candidate to announce: ipsFromInterfaces is off and no additional host resolved")
	}

	networks := []pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4}
	if pol.dualStack {
		networks = append(networks, pwebrtc.NetworkTypeUDP6)
	}
	if o.ICETCPMuxAddress != "" {
		if !o.IPsFromInterfaces {
			log.Warn().Msg("iceTCPMuxAddress is set but ipsFromInterfaces is off: TCP candidates are announced for interface addresses only, so none will be")
		}
		// pion's accept loop ends quietly on any error: the guard retries
		// the temporary ones, and the server ends on the others.
		s.tcpLn, err = guard.Listen("tcp", o.ICETCPMuxAddress, guard.ListenerOptions{
			Name: "webrtc-ice-tcp", MaxConns: o.MaxConns, MaxConnsPerIP: o.MaxConnsPerIP, Log: o.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("listen ice tcp %s: %w", o.ICETCPMuxAddress, err)
		}
		networks = append(networks, pwebrtc.NetworkTypeTCP4, pwebrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)

	s.build = func() error {
		me := &pwebrtc.MediaEngine{}
		if err := registerCodecs(me); err != nil {
			return err
		}
		ir := &interceptor.Registry{}
		// Retransmissions on NACK from a history of nackHistory packets
		// per reader (pion keeps a 1 460-byte copy of each: its default
		// of 1 024 held 1.5 MB per reader). No NACK generator: camgate
		// only sends.
		responder, err := nack.NewResponderInterceptor(nack.ResponderSize(nackHistory))
		if err != nil {
			return fmt.Errorf("nack responder: %w", err)
		}
		me.RegisterFeedback(pwebrtc.RTCPFeedback{Type: "nack"}, pwebrtc.RTPCodecTypeVideo)
		me.RegisterFeedback(pwebrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, pwebrtc.RTPCodecTypeVideo)
		ir.Add(responder)
		if err := pwebrtc.ConfigureRTCPReports(ir); err != nil {
			return fmt.Errorf("configure rtcp reports: %w", err)
		}
		s.udpMux = &hostUDPMux{
			UDPMuxDefault: ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: s.batch.packetConn(), Logger: lf.NewLogger("udpmux")}),
			addrs:         pol.hostAddrs,
		}
		se.SetICEUDPMux(s.udpMux)
		if s.tcpLn != nil {
			s.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
				Listener: s.tcpLn,
				Logger:   lf.NewLogger("tcpmux"),
				// A connection must send its first STUN binding within
				// the handshake timeout (pion's default is 30 s).
				FirstStunBindTimeout: o.HandshakeTimeout,
				ReadBufferSize:       8,
				WriteBufferSize:      4 << 20,
			})
			se.SetICETCPMux(s.tcpMux)
		}
		s.api = pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(me), pwebrtc.WithInterceptorRegistry(ir))
		return nil
	}

	for _, is := range o.ICEServers {
		srv := pwebrtc.ICEServer{URLs: []string{is.URL}}
		if is.Username != "" || is.Password != "" {
			srv.Username = is.Username
			srv.Credential = is.Password
		}
		s.iceServers = append(s.iceServers, srv)
	}
	return s, nil
}

func (s *iceStack) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	if s.udpMux != nil {
		errs = append(errs, s.udpMux.Close()) // closes udpConn too
	} else if s.udpConn != nil {
		errs = append(errs, s.udpConn.Close())
	}
	if s.tcpMux != nil {
		errs = append(errs, s.tcpMux.Close()) // closes tcpLn too
	} else if s.tcpLn != nil {
		errs = append(errs, s.tcpLn.Close())
	}
	return errors.Join(errs...)
}

// nackHistory is how many sent video packets per reader can be sent again
// on a NACK: a second at 250 packets/s (2 Mbit/s), a quarter of one at
// 8 Mbit/s, both far longer than a LAN round trip. A power of two (pion).
const nackHistory = 256
