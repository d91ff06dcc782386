package record

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/streaming/auth"
)

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// GET /list answers MediaMTX's shape: spans of contiguous segments, start
// in RFC 3339 and duration in seconds; GET /get answers one MP4; both
// want the playback permission of the path, and refuse bad requests.
func TestPlaybackAPI(t *testing.T) {
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second}, fast)
	wall := time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)
	f := publish(t, h.m, "cam", fakeAUs(25, 600), true, wall)
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	f.frames(5 * 25)
	f.pub.Close()
	h.closedSegments("cam")
	// A second recording an hour later: a span of its own.
	f2 := publish(t, h.m, "cam", fakeAUs(25, 600), true, wall.Add(time.Hour))
	waitFor(t, "the recorder to read again", func() bool { return f2.pub.Stream().Readers() == 1 })
	f2.frames(3 * 25)
	f2.pub.Close()
	h.closedSegments("cam")

	a, err := auth.New([]auth.User{
		{Name: "any", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
		{Name: "ops", Pass: "s3cret", Permissions: []auth.Permission{{Action: auth.ActionPlayback, Path: "cam"}}},
		{Name: "viewer", Pass: "pw", Permissions: []auth.Permission{{Action: auth.ActionRead}}},
	}, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := startPlayback(t, h, func(o *PlaybackOptions) {
		o.Auth = a
		o.AllowOrigin = func(origin string) bool { return origin == "http://box:8889" }
	})
	ops := map[string]string{"Authorization": "Basic b3BzOnMzY3JldA=="} // ops:s3cret

	resp, body := get(t, base+"/list?path=cam", ops)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("list: %s %s", resp.Status, body)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %v %s", err, body)
	}
	for i, want := range []struct {
		start string
		dur   float64
	}{{"2026-04-05T06:07:08Z", 5}, {"2026-04-05T07:07:08Z", 3}} {
		if list[i]["start"] != want.start || list[i]["duration"] != want.dur {
			t.Errorf("span %d: %v, want start %s duration %v", i, list[i], want.start, want.dur)
		}
	}
	u, _ := url.Parse(list[0]["url"].(string))
	if u.Path != "/get" || u.Query().Get("path") != "cam" || u.Query().Get("duration") != "5" {
		t.Errorf("span url %s", u)
	}
	if resp, body := get(t, list[0]["url"].(string), ops); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || !strings.Contains(body[:12], "ftyp") {
		t.Errorf("the span's url: %s %q", resp.Status, body[:min(len(body), 12)])
	}
	if _, body := get(t, base+"/list?path=cam&start=2026-04-05T06:30:00Z", ops); strings.Count(body, `"start"`) != 1 {
		t.Errorf("list from 06:30: %s", body)
	}

	for _, c := range []struct {
		name, url string
		hdr       map[string]string
		code      int
		want      string
	}{
		{"anonymous", "/list?path=cam", nil, 401, "authentication required"},
		{"read is not playback", "/list?path=cam", map[string]string{"Authorization": "Basic dmlld2VyOnB3"}, 401, ""},
		{"other path", "/list?path=other", ops, 401, ""},
		{"bad name", "/list?path=../etc", ops, 400, ""},
		{"no name", "/list", ops, 400, "path is required"},
		{"bad start", "/get?path=cam&start=yesterday&duration=5", ops, 400, "start"},
		{"bad duration", "/get?path=cam&start=2026-04-05T06:07:08Z&duration=-1", ops, 400, "duration"},
		{"bad format", "/get?path=cam&start=2026-04-05T06:07:08Z&duration=1&format=mpegts", ops, 400, "format"},
		{"nothing then", "/get?path=cam&start=2025-01-01T00:00:00Z&duration=60", ops, 404, "no recordings"},
		{"unknown route", "/v3/list", ops, 404, ""},
	} {
		resp, body := get(t, base+c.url, c.hdr)
		if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %s %q, want %d %q", c.name, resp.Status, body, c.code, c.want)
		}
	}
	// A browser's page asks for credentials itself: no Basic challenge
	// (the browser would pop its own dialog over the page), as on WHEP
	// and HLS.
	resp, _ = get(t, base+"/list?path=cam", nil)
	if w := resp.Header.Values("WWW-Authenticate"); len(w) != 2 || w[0] != `Basic realm="camgate"` || w[1] != `Bearer realm="camgate"` {
		t.Errorf("challenges %q", w)
	}
	resp, _ = get(t, base+"/list?path=cam", map[string]string{"X-Requested-With": "camgate-player", "Origin": "http://box:8889"})
	if w := resp.Header.Values("WWW-Authenticate"); len(w) != 1 || w[0] != `Bearer realm="camgate"` || resp.Header.Get("Access-Control-Allow-Origin") != "http://box:8889" {
		t.Errorf("page request: challenges %q, allow-origin %q", w, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = get(t, base+"/list?path=cam", map[string]string{"Origin": "http://evil.example"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin was allowed")
	}
	req, _ := http.NewRequest(http.MethodOptions, base+"/get", nil)
	req.Header.Set("Origin", "http://box:8889")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %s %v", pre.Status, pre.Header)
	}
}
