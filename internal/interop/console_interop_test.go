//go:build interop

package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// browserAgent starts, inside the test's network namespace, an agent with
// WebRTC and LL-HLS on loopback ports and the given paths.
func browserAgent(t *testing.T, dir string, paths map[string]map[string]any) (a *Agent, base string, hlsPort int) {
	t.Helper()
	webPort, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	icePort, err := FreeUDPPair()
	if err != nil {
		t.Fatal(err)
	}
	if hlsPort, err = FreeTCPPort(); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, AgentOptions{
		Bin: os.Getenv(envAgentBin), Dir: dir, Paths: paths,
		Sections: map[string]map[string]any{
			"webrtc": {
				"address":           "127.0.0.1:" + strconv.Itoa(webPort),
				"iceUDPMuxAddress":  "127.0.0.1:" + strconv.Itoa(icePort),
				"ipsFromInterfaces": false,
				"additionalHosts":   []string{"127.0.0.1"},
			},
			"hls": {"address": "127.0.0.1:" + strconv.Itoa(hlsPort)},
		},
	})
	for _, p := range []int{webPort, hlsPort} {
		if err := WaitTCP("127.0.0.1:"+strconv.Itoa(p), 20*time.Second, a.Done()); err != nil {
			t.Fatalf("listener %d: %v\n%s", p, err, a.Tail(20))
		}
	}
	return a, "http://127.0.0.1:" + strconv.Itoa(webPort), hlsPort
}

func needBrowser(t *testing.T) {
	t.Helper()
	need(t, "node", "chromium")
	root, _ := ModuleRoot()
	if _, err := os.Stat(filepath.Join(root, "internal", "interop", "browser", "node_modules", "playwright-core")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("playwright-core not installed: run internal/interop/browser/setup.sh")
		}
		t.Skip("playwright-core not installed: run internal/interop/browser/setup.sh")
	}
}

type tileState struct {
	Name        string  `json:"name"`
	State       string  `json:"state"`
	Transport   string  `json:"transport"`
	Text        string  `json:"text"`
	Frames      int     `json:"frames"`
	Decoded     int     `json:"decoded"`
	Width       int     `json:"width"`
	CurrentTime float64 `json:"currentTime"`
}

type wallResult struct {
	Error string      `json:"error"`
	First []tileState `json:"first"`
	Later []tileState `json:"later"`
	Tiles []tileState `json:"tiles"`
	Box   []string    `json:"box"`
	Logs  []string    `json:"logs"`
}

// checkWall opens the console and expects want tiles, every one of them
// presenting frames over transport ("" for any).
func checkWall(t *testing.T, a *Agent, base, shot string, want int, transport string) wallResult {
	t.Helper()
	var r wallResult
	node(t, &r, "wall", base+"/", strconv.Itoa(want), shot)
	if r.Error != "" {
		t.Fatalf("wall: %s; tiles %+v\nconsole:\n%s\nagent:\n%s", r.Error, r.Tiles, strings.Join(r.Logs, "\n"), a.Tail(30))
	}
	if len(r.Later) != want {
		t.Fatalf("wall shows %d tiles, want %d: %+v", len(r.Later), want, r.Later)
	}
	for i, tl := range r.Later {
		f := r.First[i]
		if tl.Frames <= f.Frames || tl.CurrentTime <= f.CurrentTime || tl.Width == 0 {
			t.Errorf("tile %s not moving: first %+v later %+v", tl.Name, f, tl)
		}
		if transport != "" && !strings.HasPrefix(tl.Transport, transport) {
			t.Errorf("tile %s plays over %q, want %s", tl.Name, tl.Transport, transport)
		}
		t.Logf("tile %-6s %-6s %4d frames presented, %4d decoded, %dpx wide", tl.Name, tl.Transport, tl.Frames, tl.Decoded, tl.Width)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Errorf("screenshot: %v", err)
	}
	return r
}

// The operator's console in Chromium: a wall of 4 cameras (the demo and
// three mounts of a GStreamer camera) all playing over WebRTC, the box's
// figures, then the player's message for a codec no browser plays, then
// HLS against WebRTC: time to the first frame and glass-to-glass latency.
func TestBrowserConsole(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	needBrowser(t)
	dir := outDir(t)
	cam, err := StartCamera(dir, os.Getenv(envClip), 0, "--path", "/cam1", "--path", "/cam2", "--path", "/cam3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Stop(5 * time.Second) })
	camURL := func(m string) string { return "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port) + "/" + m }
	a, base, _ := browserAgent(t, dir, map[string]map[string]any{
		"demo": {"source": "demo", "sourceOnDemand": false},
		"cam1": {"source": camURL("cam1"), "rtspTransport": "tcp"},
		"cam2": {"source": camURL("cam2"), "rtspTransport": "tcp"},
		"cam3": {"source": camURL("cam3"), "rtspTransport": "tcp"},
	})

	t.Run("wall of 4 over WebRTC", func(t *testing.T) {
		r := checkWall(t, a, base, filepath.Join(dir, "console-wall.png"), 4, "webrtc")
		joined := strings.Join(r.Box, "; ")
		if !strings.Contains(joined, "version=") || !strings.Contains(joined, "uplink=off") || !strings.Contains(joined, "memory=") {
			t.Errorf("box figures: %s", joined)
		}
		t.Logf("box: %s", joined)
	})

	t.Run("codec no browser plays", func(t *testing.T) {
		need(t, "ffmpeg")
		// The seed's own command: ffmpeg's default for an rtsp output is
		// MPEG-4 Part 2.
		pub := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
			"-f", "rtsp", "-rtsp_transport", "tcp", a.URL("mp4v", ""))
		setProcAttr(pub)
		if err := pub.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pub.Process.Signal(os.Interrupt); _ = pub.Wait() }()
		var r struct {
			Error string        `json:"error"`
			Msg   string        `json:"msg"`
			Last  *browserState `json:"last"`
			Logs  []string      `json:"logs"`
		}
		node(t, &r, "error", base+"/mp4v", filepath.Join(dir, "player-mpeg4.png"))
		if r.Error != "" {
			t.Fatalf("%s; last %+v\n%s", r.Error, r.Last, strings.Join(r.Logs, "\n"))
		}
		if !strings.Contains(r.Msg, "MPEG-4 Video") || !strings.Contains(r.Msg, "-c:v libx264") {
			t.Errorf("message does not say what to publish:\n%s", r.Msg)
		}
		t.Logf("message:\n%s", r.Msg)
	})

	t.Run("HLS against WebRTC", func(t *testing.T) {
		need(t, "ffmpeg")
		clock, err := StartClockCamera(dir, a.URL("clock", ""))
		if err != nil {
			t.Fatal(err)
		}
		defer clock.Stop()
		if err := waitReadable(a.URL("clock", ""), 20*time.Second); err != nil {
			t.Fatal(err)
		}
		var report []string
		for _, c := range []struct{ label, query string }{{"WebRTC", ""}, {"LL-HLS", "?transport=hls"}} {
			var ff struct {
				Error      string   `json:"error"`
				Times      []int    `json:"times"`
				Transports []string `json:"transports"`
				Median     float64  `json:"median"`
			}
			node(t, &ff, "firstframe", base+"/clock"+c.query, "5")
			var lat struct {
				Error      string  `json:"error"`
				N          int     `json:"n"`
				Unreadable int     `json:"unreadable"`
				Median     float64 `json:"median"`
				P10        float64 `json:"p10"`
				P90        float64 `json:"p90"`
				Transport  string  `json:"transport"`
			}
			node(t, &lat, "latency", base+"/clock"+c.query, "15")
			if ff.Error != "" || lat.Error != "" {
				t.Fatalf("%s: %s %s", c.label, ff.Error, lat.Error)
			}
			line := fmt.Sprintf("%-7s first frame median %4.0f ms (runs %v, over %v); glass-to-glass median %4.0f ms (p10 %.0f, p90 %.0f, %d frames read, %d unreadable)",
				c.label, ff.Median, ff.Times, ff.Transports[0], lat.Median, lat.P10, lat.P90, lat.N, lat.Unreadable)
			t.Log(line)
			report = append(report, line)
		}
		if err := os.WriteFile(filepath.Join(dir, "hls-vs-webrtc.txt"), []byte(strings.Join(report, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	})
}

// blockUDP drops every UDP datagram in the test's network namespace (as a
// firewall between a control room and a camera LAN does), with nftables
// or else iptables, and checks that it works.
func blockUDP(t *testing.T) {
	t.Helper()
	var how string
	if _, err := exec.LookPath("nft"); err == nil {
		how = "nft"
		for _, args := range [][]string{
			{"add", "table", "inet", "camgate_test"},
			{"add", "chain", "inet", "camgate_test", "out", "{ type filter hook output priority 0; policy accept; }"},
			{"add", "rule", "inet", "camgate_test", "out", "meta", "l4proto", "udp", "drop"},
		} {
			if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
				t.Fatalf("nft %v: %v\n%s", args, err, out)
			}
		}
	} else {
		need(t, "iptables")
		how = "iptables"
		if out, err := exec.Command("iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP").CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
	}
	// A datagram to ourselves must not arrive.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("x"))
	c.Close()
	_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, _, err := pc.ReadFrom(make([]byte, 8)); err == nil {
		t.Fatalf("UDP still passes after blocking it with %s", how)
	}
	t.Logf("UDP blocked with %s", how)
}

// With UDP blocked, WebRTC cannot connect: the player page and the wall
// fall back to LL-HLS by themselves and show moving video.
func TestBrowserFallsBackToHLS(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	needBrowser(t)
	blockUDP(t)
	dir := outDir(t)
	cam, err := StartCamera(dir, os.Getenv(envClip), 0, "--path", "/cam")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Stop(5 * time.Second) })
	a, base, _ := browserAgent(t, dir, map[string]map[string]any{
		"demo": {"source": "demo"},
		"cam":  {"source": cam.URL, "rtspTransport": "tcp"},
	})

	for _, path := range []string{"demo", "cam"} {
		t.Run("player "+path, func(t *testing.T) {
			shot := filepath.Join(dir, "fallback-"+path+".png")
			var r playResult
			node(t, &r, "play", base+"/"+path, shot)
			if r.Error != "" {
				t.Fatalf("%s: %s; last state %+v\nconsole:\n%s\nagent:\n%s", path, r.Error, r.Last, strings.Join(r.Logs, "\n"), a.Tail(30))
			}
			if r.Later.Transport != "hls" {
				t.Errorf("plays over %q, want the HLS fallback (%s)", r.Later.Transport, r.Later.Status)
			}
			if r.Later.CurrentTime <= r.First.CurrentTime || r.Later.FramesDecoded <= r.First.FramesDecoded {
				t.Fatalf("not moving: first %+v later %+v", r.First, r.Later)
			}
			t.Logf("%s over %s: %dx%d, %d frames decoded, first frame %.0f ms after the page started (the fallback waits 4 s for WebRTC); %q",
				path, r.Later.Transport, r.Later.VideoWidth, r.Later.VideoHeight, r.Later.FramesDecoded, r.First.StartFirstFrameMs, r.Later.Status)
		})
	}
	t.Run("wall", func(t *testing.T) {
		checkWall(t, a, base, filepath.Join(dir, "fallback-wall.png"), 2, "hls")
	})
}
