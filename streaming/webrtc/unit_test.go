package webrtc

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestHostCandidates(t *testing.T) {
	ifs := []netInterface{
		{Name: "lo", Up: true, Loop: true, Addrs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}},
		{Name: "eth0", Up: true, Addrs: []net.IP{net.ParseIP("192.168.1.20"), net.ParseIP("fe80::1"), net.ParseIP("2001:db8::20")}},
		{Name: "wlan0", Up: false, Addrs: []net.IP{net.ParseIP("192.168.2.20")}},
		{Name: "docker0", Up: true, Addrs: []net.IP{net.ParseIP("172.17.0.1")}},
		{Name: "veth12ab", Up: true, Addrs: []net.IP{net.ParseIP("169.254.3.3")}},
		{Name: "br-4f2a", Up: true, Addrs: []net.IP{net.ParseIP("172.18.0.1")}},
		{Name: "virbr0", Up: true, Addrs: []net.IP{net.ParseIP("192.168.122.1")}},
		{Name: "enp3s0", Up: true, Addrs: []net.IP{net.ParseIP("10.0.0.5")}},
	}
	list := func() ([]netInterface, error) { return ifs, nil }
	cases := []struct {
		name         string
		from         bool
		only         []string
		bound        net.IP
		dual         bool
		placeholders []net.IP
		want         []string
	}{
		{"all usable, dual stack", true, nil, net.IPv6unspecified, true, nil,
			[]string{"192.168.1.20:8189", "[2001:db8::20]:8189", "10.0.0.5:8189"}},
		{"ipv4 socket", true, nil, net.IPv4zero, false, nil,
			[]string{"192.168.1.20:8189", "10.0.0.5:8189"}},
		{"listed only", true, []string{"enp3s0", "docker0"}, net.IPv4zero, false, nil,
			[]string{"172.17.0.1:8189", "10.0.0.5:8189"}},
		{"off, additional hosts only", false, nil, net.IPv4zero, false, []net.IP{net.IPv4zero},
			[]string{"0.0.0.0:8189"}},
		{"bound to one address", true, nil, net.ParseIP("10.0.0.5"), false, nil,
			[]string{"10.0.0.5:8189"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &candidatePolicy{fromInterfaces: tc.from, only: tc.only, interfaces: list, bound: tc.bound,
				dualStack: tc.dual, port: 8189, placeholders: tc.placeholders}
			var got []string
			for _, a := range p.hostAddrs() {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAdditionalHostsOnly checks the rewrite rule end to end: with
// interface addresses off, the answer's only candidate is the additional host.
func TestAdditionalHostsOnly(t *testing.T) {
	o := Options{Paths: nilPaths{}, Address: "127.0.0.1:0", ICEUDPMuxAddress: "127.0.0.1:0",
		AdditionalHosts: []string{"192.0.2.7", "localhost-not-resolvable.invalid"}, Logger: testLogger(t)}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	st, err := newICEStack(&o, o.Logger)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if st.api != nil || st.udpMux != nil {
		t.Fatal("pion engine built before any session")
	}
	api, err := st.peerAPI()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := st.peerAPI(); again != api {
		t.Fatal("pion engine built twice")
	}
	pc, err := api.NewPeerConnection(pwebrtcConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sdp := gatherOffer(t, pc)
	var cands []string
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "a=candidate:") && strings.Contains(l, " 1 udp ") {
			cands = append(cands, strings.TrimSpace(l))
		}
	}
	if len(cands) != 1 || !strings.Contains(cands[0], " 192.0.2.7 ") {
		t.Fatalf("candidates %q, want only 192.0.2.7", cands)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.peerAPI(); err == nil {
		t.Fatal("engine handed out after close")
	}
}

func TestParseOffer(t *testing.T) {
	for _, tc := range offerCases {
		o, err := parseOffer(tc.sdp)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadOffer) {
				t.Errorf("%s: error %v does not wrap ErrBadOffer", tc.name, err)
			}
			continue
		}
		if got := strings.Join(o.names(), ","); got != tc.names {
			t.Errorf("%s: codecs %q, want %q", tc.name, got, tc.names)
		}
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, tc := range offerCases {
		f.Add(tc.sdp)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOffer(s)
		if err == nil && o.videoSections+o.audioSections == 0 {
			t.Fatal("accepted an offer without media")
		}
		if err != nil && !errors.Is(err, ErrBadOffer) {
			t.Fatalf("error %v does not wrap ErrBadOffer", err)
		}
	})
}

var offerCases = []struct {
	name    string
	sdp     string
	wantErr bool
	names   string
}{
	{"garbage", "hello", true, ""},
	{"empty", "", true, ""},
	{"no media", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", true, ""},
	{"chrome-like", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 102 103 49\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
		"a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
		"a=rtpmap:49 H265/90000\r\na=fmtp:49 level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", false, "H264,H265,Opus,PCMU,PCMA"},
	{"vp8 only", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n", false, ""},
	{"bad rtpmap", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96\r\n", true, ""},
}

func TestChooseH264(t *testing.T) {
	offers := []h264Offer{
		{profile: [2]byte{0x42, 0x00}, fmtp: "A"},
		{profile: [2]byte{0x42, 0xe0}, fmtp: "B"},
		{profile: [2]byte{0x64, 0x00}, fmtp: "C"},
	}
	// 42 c0 matches no exact pair; the same profile_idc wins.
	if got := chooseH264(spsBaseline, offers); got != "A" {
		t.Errorf("baseline: %s, want A", got)
	}
	if got := chooseH264(spsHighBFrames, offers); got != "C" {
		t.Errorf("high: %s, want C", got)
	}
	if got := chooseH264([]byte{0x67, 0x4d, 0x40, 0x1f}, offers); got != "B" {
		t.Errorf("main without a main offer: %s, want constrained baseline B", got)
	}
	if got := chooseH264(nil, offers[2:]); got != "C" {
		t.Errorf("no sps: %s", got)
	}
}

func TestH264Reorders(t *testing.T) {
	if r, known := h264Reorders(spsBaseline); r || !known {
		t.Errorf("baseline: reorders %v known %v", r, known)
	}
	if r, known := h264Reorders(spsHighBFrames); !r || !known {
		t.Errorf("high with reorder frames: reorders %v known %v", r, known)
	}
	if _, known := h264Reorders(nil); known {
		t.Error("no sps: known")
	}
}

func TestReorderGuard(t *testing.T) {
	g := reorderGuard{}
	// I P B B P: 0, 3*3600, 1*3600, 2*3600 ...
	var err error
	for _, ts := range []uint32{0, 10800, 3600, 7200, 21600, 14400} {
		if err = g.check(ts); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrBFrames) {
		t.Errorf("B-frame order not detected: %v", err)
	}
	g = reorderGuard{}
	for _, ts := range []uint32{900000, 903600, 907200, 5, 3605, 7205} { // a restarted source
		if err := g.check(ts); err != nil {
			t.Fatalf("restart taken for B-frames: %v", err)
		}
	}
}

func TestPionLogLevels(t *testing.T) {
	var b strings.Builder
	l := pionLoggerFactory{log: zerolog.New(&b).Level(zerolog.InfoLevel)}.NewLogger("ice")
	l.Warnf("routine %d", 1)
	l.Infof("chatter %d", 2)
	if b.Len() != 0 {
		t.Fatalf("pion warnings and info reached an info log: %s", b.String())
	}
	l.Errorf("broken %d", 3)
	if !strings.Contains(b.String(), `"level":"warn"`) || !strings.Contains(b.String(), "broken 3") || !strings.Contains(b.String(), `"pion":"ice"`) {
		t.Fatalf("pion error logged as %s", b.String())
	}
}
