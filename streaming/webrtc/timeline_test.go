package webrtc

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/camgate/camgate/streaming"
)

func TestPlaybackOrigin(t *testing.T) {
	for _, c := range []struct{ addr, host, want string }{
		{":9996", "box.local:8889", "http://box.local:9996"},
		{"0.0.0.0:9996", "10.0.0.5:8889", "http://10.0.0.5:9996"},
		{"[::]:9996", "[fe80::1]:8889", "http://[fe80::1]:9996"},
		{"192.168.1.4:9996", "box:8889", "http://192.168.1.4:9996"},
		{"", "box:8889", ""},
		{":0", "box:8889", ""},
		{":9996", `evil"host:8889`, ""},
	} {
		if got := playbackOrigin(c.addr, c.host); got != c.want {
			t.Errorf("playbackOrigin(%q, %q) = %q, want %q", c.addr, c.host, got, c.want)
		}
	}
}

// With a playback listener the player page carries the timeline, and
// its content security policy lets it fetch and play from there; without
// one, neither.
func TestPlayerTimeline(t *testing.T) {
	m := newManager(t, map[string]streaming.PathConfig{"cam": {Source: streaming.SourceDemo}})
	for _, c := range []struct {
		playback string
		want     bool
	}{{":9996", true}, {"", false}} {
		s := startServer(t, Options{Paths: m, PlaybackAddress: c.playback})
		resp, err := http.Get(s.base + "/cam")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page, csp := string(b), resp.Header.Get("Content-Security-Policy")
		origin := "http://127.0.0.1:9996"
		has := strings.Contains(page, `<section id="timeline" data-playback="`+origin+`"`)
		if has != c.want || strings.Contains(page, "{{") {
			t.Errorf("playback %q: timeline shown %v, want %v", c.playback, has, c.want)
		}
		if allowed := strings.Contains(csp, "connect-src 'self' "+origin) && strings.Contains(csp, "media-src 'self' blob: "+origin); allowed != c.want {
			t.Errorf("playback %q: CSP %q", c.playback, csp)
		}
	}
}
