package webrtc

import (
	"errors"
	"testing"
)

// TestOptionsValidate: the ICE server rules pion applies only when a peer
// connection is made, and the candidate rule, are refused by New at once
// with the option named.
func TestOptionsValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		servers []ICEServer
		option  string
	}{
		"scheme":         {[]ICEServer{{URL: "http://stun.example.com"}}, "iceServers[0].url"},
		"no host":        {[]ICEServer{{URL: "stun:"}}, "iceServers[0].url"},
		"port":           {[]ICEServer{{URL: "stun:s.example.com:0"}}, "iceServers[0].url"},
		"turn no user":   {[]ICEServer{{URL: "stun:s.example.com"}, {URL: "turn:t.example.com", Password: "p"}}, "iceServers[1].username"},
		"turns no user":  {[]ICEServer{{URL: "turns:t.example.com:5349"}}, "iceServers[0].username"},
		"turn transport": {[]ICEServer{{URL: "turn:t.example.com?transport=sctp", Username: "u", Password: "p"}}, "iceServers[0].url"},
	} {
		o := Options{IPsFromInterfaces: true, ICEServers: tc.servers}
		var oe *OptionError
		if err := o.Validate(); !errors.As(err, &oe) || oe.Option != tc.option {
			t.Errorf("%s: %v", name, err)
		}
		o.Paths = newManager(t, nil)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New took %+v", name, tc.servers)
		}
	}
	ok := Options{IPsFromInterfaces: false, ICEServers: []ICEServer{{URL: "stun:s.example.com"}, {URL: "turn:t.example.com:3478?transport=tcp", Username: "u", Password: "p"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	none := Options{}
	if err := none.Validate(); !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("no candidates: %v", err)
	}
}
