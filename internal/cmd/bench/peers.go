package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/interop"
)

// Peers: other relays the user has built (-peer NAME=PATH), run against
// the same camera and loads as camgate. The harness writes each one's
// configuration (loopback only, the same listeners camgate has on: RTSP
// over TCP and UDP where the peer has it, WebRTC) and never downloads or
// ships them.

// peerKinds are the relays -peer knows how to configure.
var peerKinds = []string{"mediamtx", "go2rtc"}

type peer struct{ name, bin string }

// parsePeers parses repeated -peer NAME=PATH values.
func parsePeers(vs []string) ([]peer, error) {
	var ps []peer
	for _, v := range vs {
		name, bin, ok := strings.Cut(v, "=")
		if !ok || bin == "" {
			return nil, fmt.Errorf("-peer %q: want NAME=PATH, NAME one of %s", v, strings.Join(peerKinds, ", "))
		}
		known := false
		for _, k := range peerKinds {
			known = known || k == name
		}
		if !known {
			return nil, fmt.Errorf("-peer %q: unknown peer %q (known: %s)", v, name, strings.Join(peerKinds, ", "))
		}
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return nil, fmt.Errorf("-peer %s: %s is not a file", name, bin)
		}
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, err
		}
		ps = append(ps, peer{name: name, bin: abs})
	}
	return ps, nil
}

// relay is a running relay under test: camgate or a peer, relaying the
// camera's URLs as paths cam0, cam1, ...
type relay struct {
	name string
	proc *interop.Proc
	rtsp string // rtsp://127.0.0.1:PORT/ (path appended)
	whep func(path string) string
	udp  bool // serves RTSP readers over UDP
}

func (r *relay) pid() int                   { return r.proc.PID() }
func (r *relay) rtspURL(path string) string { return r.rtsp + path }

// pathNames are the relayed paths for n cameras.
func pathNames(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "cam" + strconv.Itoa(i)
	}
	return ps
}

// startRelay starts the relay name (camgate or a -peer) relaying camURL as
// n always-on paths, and waits until the first path plays.
func (b *bench) startRelay(ctx context.Context, name, label, camURL string, n int) (*relay, error) {
	var r *relay
	var err error
	switch name {
	case "camgate":
		paths := map[string]map[string]any{}
		for _, p := range pathNames(n) {
			paths[p] = map[string]any{"source": camURL, "rtspTransport": "tcp", "sourceOnDemand": false}
		}
		a, _, aerr := b.startAgent(label, paths)
		if aerr != nil {
			return nil, aerr
		}
		base := b.webrtcBase
		r = &relay{name: name, proc: a.Proc, rtsp: "rtsp://" + a.RTSPAddr + "/", udp: true,
			whep: func(p string) string { return base + "/" + p + "/whep" }}
	case "mediamtx":
		r, err = b.startMediaMTX(label, camURL, n)
	case "go2rtc":
		r, err = b.startGo2RTC(label, camURL, n)
	default:
		return nil, fmt.Errorf("unknown relay %q", name)
	}
	if err != nil {
		return nil, err
	}
	// Ready when a reader gets a keyframe through it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := firstIDR(ctx, r.rtspURL("cam0")); err == nil {
			return r, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: cam0 never played: %w (%s)", name, err, r.proc.Tail(5))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (b *bench) peerBin(name string) string {
	for _, p := range b.o.peers {
		if p.name == name {
			return p.bin
		}
	}
	return ""
}

// startMediaMTX writes a MediaMTX configuration with the listeners camgate
// has on in the bench (RTSP over TCP and UDP, WebRTC with loopback ICE
// candidates only) and nothing else.
func (b *bench) startMediaMTX(label, camURL string, n int) (*relay, error) {
	rtspPort, err1 := interop.FreeTCPPort()
	rtpPort, err2 := interop.FreeUDPPair()
	httpPort, err3 := interop.FreeTCPPort()
	icePort, err4 := interop.FreeUDPPair()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return nil, err
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `logLevel: info
logDestinations: [stdout]
api: false
metrics: false
pprof: false
playback: false
rtmp: false
hls: false
srt: false
rtsp: true
rtspTransports: [udp, tcp]
rtspEncryption: "no"
rtspAddress: 127.0.0.1:%d
rtpAddress: 127.0.0.1:%d
rtcpAddress: 127.0.0.1:%d
webrtc: true
webrtcAddress: 127.0.0.1:%d
webrtcEncryption: false
webrtcLocalUDPAddress: 127.0.0.1:%d
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
webrtcICEServers2: []
paths:
`, rtspPort, rtpPort, rtpPort+1, httpPort, icePort)
	for _, p := range pathNames(n) {
		fmt.Fprintf(&sb, "  %s:\n    source: %s\n    rtspTransport: tcp\n    sourceOnDemand: false\n", p, camURL)
	}
	dir := filepath.Join(b.dir, label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(conf, []byte(sb.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := interop.StartProcIn(dir, dir, "mediamtx", b.peerBin("mediamtx"), conf)
	if err != nil {
		return nil, err
	}
	b.track(p)
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	return &relay{name: "mediamtx", proc: p, rtsp: "rtsp://127.0.0.1:" + strconv.Itoa(rtspPort) + "/", udp: true,
		whep: func(path string) string { return base + "/" + path + "/whep" }}, nil
}

// startGo2RTC writes a go2rtc configuration: its API (which serves WHEP),
// RTSP (TCP only: go2rtc has no UDP transport) and WebRTC with loopback
// candidates only and no STUN servers; every stream preloaded so it is
// pulled all the time, like camgate's and MediaMTX's always-on paths.
func (b *bench) startGo2RTC(label, camURL string, n int) (*relay, error) {
	apiPort, err1 := interop.FreeTCPPort()
	rtspPort, err2 := interop.FreeTCPPort()
	icePort, err3 := interop.FreeTCPPort()
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return nil, err
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `app:
  modules: [api, rtsp, webrtc]
log:
  level: info
api:
  listen: "127.0.0.1:%d"
rtsp:
  listen: "127.0.0.1:%d"
webrtc:
  listen: "127.0.0.1:%d"
  ice_servers: []
  candidates: []
  filters:
    loopback: true
    ips: ["127.0.0.1"]
    networks: [udp4, tcp4]
streams:
`, apiPort, rtspPort, icePort)
	for _, p := range pathNames(n) {
		fmt.Fprintf(&sb, "  %s: %s\n", p, camURL)
	}
	sb.WriteString("preload:\n")
	for _, p := range pathNames(n) {
		fmt.Fprintf(&sb, "  %s: \"\"\n", p)
	}
	dir := filepath.Join(b.dir, label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "go2rtc.yaml")
	if err := os.WriteFile(conf, []byte(sb.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := interop.StartProcIn(dir, dir, "go2rtc", b.peerBin("go2rtc"), "-config", conf)
	if err != nil {
		return nil, err
	}
	b.track(p)
	base := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	return &relay{name: "go2rtc", proc: p, rtsp: "rtsp://127.0.0.1:" + strconv.Itoa(rtspPort) + "/",
		whep: func(path string) string { return base + "/api/webrtc?src=" + path }}, nil
}
