package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
)

// TestListShowsLivePathsOfEntries: paths made live by all_others (a
// publisher) and by a ~regexp entry (a reader) are in /v1/paths, the
// paths.list command behind it and GET /v1/paths/<name>, with origin
// naming the entry they come from, as they are in health.
func TestListShowsLivePathsOfEntries(t *testing.T) {
	file, rtsp, apiAddr := fleetConfig(t, t.TempDir(), "", `paths:
  "~^live[0-9]+$":
    source: demo
`)
	startAgent(t, file, &testlog.Buffer{})

	forma := &format.H264{PayloadTyp: 96, SPS: testcam.SPS, PPS: testcam.PPS, PacketizationMode: 1}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	tcp := gortsplib.TransportTCP
	pub := &gortsplib.Client{Transport: &tcp}
	if err := pub.StartRecording("rtsp://"+rtsp+"/mystream", desc); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/live7", false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.WaitPackets(t, 1, 5*time.Second)

	get := func(p string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + apiAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("/v1/health")
	var health struct {
		Paths []struct{ Name string } `json:"paths"`
	}
	if code != 200 || json.Unmarshal(body, &health) != nil {
		t.Fatalf("health: %d %s", code, body)
	}
	inHealth := map[string]bool{}
	for _, p := range health.Paths {
		inHealth[p.Name] = true
	}

	code, body = get("/v1/paths")
	var list struct{ Paths []entry }
	if code != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("/v1/paths: %d %s", code, body)
	}
	got := map[string]entry{}
	for _, p := range list.Paths {
		got[p.Name] = p
	}
	want := map[string]entry{
		"mystream": {Name: "mystream", Origin: "all_others", State: "ready", Conf: entryConf{Source: "publisher"}},
		"live7":    {Name: "live7", Origin: "~^live[0-9]+$", State: "ready", Conf: entryConf{Source: "demo"}},
	}
	for name, w := range want {
		if !inHealth[name] {
			t.Errorf("%s not in health (%s)", name, body)
		}
		if got[name] != w {
			t.Errorf("/v1/paths %s = %+v, want %+v", name, got[name], w)
		}
		code, one := get("/v1/paths/" + name)
		var e entry
		if code != 200 || json.Unmarshal(one, &e) != nil || e != w {
			t.Errorf("GET /v1/paths/%s: %d %s", name, code, one)
		}
	}
	for _, p := range list.Paths {
		if !inHealth[p.Name] && p.Name != "all_others" && p.Name[0] != '~' {
			t.Errorf("%s listed but not in health", p.Name)
		}
	}
}

// entry is what the listing tests read of a paths.list entry.
type entry struct {
	Name   string    `json:"name"`
	Origin string    `json:"origin"`
	State  string    `json:"state"`
	Conf   entryConf `json:"conf"`
}

type entryConf struct {
	Source string `json:"source"`
}
