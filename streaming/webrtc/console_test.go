package webrtc

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// GET /~status shows a client the paths it may read and nothing else; the
// box's figures only to a client that may read one or use the API.
func TestConsoleStatus(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{
		"lobby": {Source: streaming.SourcePublisher},
		"vault": {Source: streaming.SourcePublisher},
	})
	publish(t, m, "vault", spsBaseline, false)
	boxCalls := 0
	box := func(context.Context) Box {
		boxCalls++
		return Box{Version: "9.9", Uplink: &BoxUplink{Broker: "tcp://fleet:1883"}}
	}
	users := func(anyReads string) []auth.User {
		u := []auth.User{
			{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
			{Name: "admin", Pass: "adm", Permissions: []auth.Permission{{Action: auth.ActionAPI}}},
		}
		if anyReads != "" {
			u = append(u, auth.User{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead, Path: anyReads}}})
		}
		return u
	}
	for _, tc := range []struct {
		name    string
		anyRead string
		header  []string
		paths   []string
		box     bool
	}{
		{"anonymous reads lobby", "lobby", nil, []string{"lobby"}, true},
		{"credentials read all", "lobby", []string{"Authorization", "Basic b3BzOnMzY3JldA=="}, []string{"lobby", "vault"}, true},
		{"anonymous reads nothing", "", nil, nil, false},
		{"wrong password reads what anonymous does", "", []string{"Authorization", "Basic b3BzOndyb25n"}, nil, false},
		{"api permission sees the box", "", []string{"Authorization", "Basic YWRtaW46YWRt"}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			au, err := auth.New(users(tc.anyRead), auth.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer au.Close()
			srv := startServer(t, Options{Paths: m, Lister: m, Auth: au, Box: box, HLSPort: 8888})
			res, body := doRequest(t, http.MethodGet, srv.base+"/~status", "", "", tc.header...)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status = %d %s", res.StatusCode, body)
			}
			var st struct {
				Paths []struct {
					Name, State, Tracks string
					Bitrate             json.Number
				} `json:"paths"`
				Box *Box `json:"box"`
			}
			dec := json.NewDecoder(strings.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&st); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range st.Paths {
				names = append(names, p.Name)
				if strings.Contains(p.Bitrate.String(), ".") {
					t.Errorf("bitrate %s is not a whole number", p.Bitrate)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.paths, ",") {
				t.Errorf("paths %v, want %v\n%s", names, tc.paths, body)
			}
			if (st.Box != nil) != tc.box {
				t.Errorf("box shown %v, want %v\n%s", st.Box != nil, tc.box, body)
			}
			if st.Box != nil && (st.Box.Version != "9.9" || st.Box.Uplink == nil || st.Box.Uplink.Broker != "tcp://fleet:1883") {
				t.Errorf("box %+v", st.Box)
			}
			if !tc.box && strings.Contains(body, "9.9") {
				t.Errorf("box figures leak: %s", body)
			}
		})
	}
	srv := startServer(t, Options{Paths: m, Lister: m})
	if res, _ := doRequest(t, http.MethodPost, srv.base+"/~status", "application/json", "{}"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /~status = %d", res.StatusCode)
	}
	if res, body := doRequest(t, http.MethodGet, srv.base+"/~status", "", ""); res.StatusCode != 200 || strings.Contains(body, `"box"`) {
		t.Errorf("without a Box provider: %d %s", res.StatusCode, body)
	}
}

// The pages know the HLS port and may fetch from it, and from nowhere else.
func TestPagesAllowTheHLSPort(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"demo": {Source: streaming.SourceDemo, SourceOnDemand: true}})
	srv := startServer(t, Options{Paths: m, Lister: m, HLSPort: 18888, RTSPPort: 8554})
	for _, p := range []string{"/", "/demo"} {
		res, body := doRequest(t, http.MethodGet, srv.base+p, "", "")
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != 200 || !strings.Contains(body, `data-hls-port="18888"`) || !strings.Contains(body, "Camgate.Player") {
			t.Errorf("GET %s = %d, page lacks the HLS port or the player", p, res.StatusCode)
		}
		if !strings.Contains(csp, "connect-src 'self' http://*:18888") || !strings.Contains(csp, "media-src 'self' blob: http://*:18888") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if strings.Contains(body, "{{") {
			t.Errorf("GET %s: placeholder left in the page", p)
		}
	}
	srv2 := startServer(t, Options{Paths: m, Lister: m})
	res, _ := doRequest(t, http.MethodGet, srv2.base+"/demo", "", "")
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "http://") {
		t.Errorf("without HLS the CSP allows %q", csp)
	}
}

func TestUnsupportedCodecsSaysWhatToPublish(t *testing.T) {
	for _, c := range []struct {
		stream []string
		hint   bool
	}{
		{[]string{"MPEG-4 Video"}, true},
		{[]string{"M-JPEG", "MPEG-4 Audio"}, true},
		{[]string{"H265", "MPEG-4 Video"}, false},
		{[]string{"G722"}, false},
	} {
		msg := (&UnsupportedCodecsError{Stream: c.stream, Offered: []string{"H264"}}).Error()
		if strings.Contains(msg, "-c:v libx264") != c.hint {
			t.Errorf("%v: %s", c.stream, msg)
		}
	}
}
