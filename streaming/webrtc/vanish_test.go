package webrtc

import (
	"net"
	"testing"

	"github.com/pion/ice/v4"
	pwebrtc "github.com/pion/webrtc/v4"
)

// vanishingAPI is a loopback client API whose ICE traffic goes through one
// socket the test can close, so the peer disappears without saying so.
func vanishingAPI(t testing.TB) (*pwebrtc.API, func()) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})
	t.Cleanup(func() { _ = mux.Close() })
	se := pwebrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	se.SetICETimeouts(0, 0, 0)
	me := &pwebrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(me)), func() { _ = mux.Close() }
}
