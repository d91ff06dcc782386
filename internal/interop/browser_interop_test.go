//go:build interop

package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The browser test runs in a network namespace of its own holding only lo:
// the agent, the camera and chromium cannot reach or announce any other
// address. The test re-runs itself under `unshare -n` with these set.
const (
	envNetns    = "INTEROP_BROWSER_NETNS"
	envAgentBin = "INTEROP_BROWSER_AGENT_BIN"
	envClip     = "INTEROP_BROWSER_CLIP"
)

// inOwnNetns re-runs the calling test inside a fresh network namespace and
// returns false in the outer process (the inner run decided the outcome);
// it returns true inside, after checking that only loopback exists.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(envNetns) == "1" {
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagLoopback == 0 {
				t.Fatalf("interface %s inside the test namespace", ifc.Name)
			}
		}
		return true
	}
	need(t, "unshare", "ip")
	bin, clip := AgentBin(t), Clip(t)
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=15m")
	cmd.Env = append(os.Environ(), envNetns+"=1", envAgentBin+"="+bin, envClip+"="+clip)
	out, err := cmd.CombinedOutput()
	t.Logf("inside unshare -n:\n%s", out)
	if err != nil {
		t.Fatalf("test inside the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("test inside the network namespace did not pass")
	}
	return false
}

type browserState struct {
	VideoWidth    int     `json:"videoWidth"`
	VideoHeight   int     `json:"videoHeight"`
	CurrentTime   float64 `json:"currentTime"`
	FramesDecoded int     `json:"framesDecoded"`
	JitterMs      float64 `json:"jitterMs"`
	Codec         string  `json:"codec"`
	FirstFrameMs  float64 `json:"firstFrameMs"`
	Status        string  `json:"status"`
	Transport     string  `json:"transport"`
	// StartFirstFrameMs is from the player's start, whatever the transport.
	StartFirstFrameMs float64 `json:"startFirstFrameMs"`
}

type playResult struct {
	Error string        `json:"error"`
	First browserState  `json:"first"`
	Later browserState  `json:"later"`
	Last  *browserState `json:"last"`
	Logs  []string      `json:"logs"`
}

type measureResult struct {
	Error  string   `json:"error"`
	Times  []int    `json:"times"`
	Median float64  `json:"median"`
	Logs   []string `json:"logs"` // runs that needed more than one attempt
}

// node runs browser_play.mjs and decodes its JSON line into v.
func node(t *testing.T, v any, args ...string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "internal", "interop", "browser")
	out, errOut, err := run(5*time.Minute, "node", append([]string{filepath.Join(dir, "browser_play.mjs")}, args...)...)
	line := strings.TrimSpace(out)
	if i := strings.LastIndex(line, "\n"); i >= 0 {
		line = line[i+1:]
	}
	if jerr := json.Unmarshal([]byte(line), v); jerr != nil {
		t.Fatalf("node %v: %v (%v)\nstdout:\n%s\nstderr:\n%s", args, err, jerr, out, errOut)
	}
	if err != nil {
		t.Errorf("node %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
}

// Debian's chromium plays camgate's player page for the demo path and for a
// camera path over WebRTC, with ICE on loopback only; then the time from
// the page's POST to the first decoded frame is measured.
func TestBrowserPlaysWHEP(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	need(t, "node", "chromium")
	root, _ := ModuleRoot()
	if _, err := os.Stat(filepath.Join(root, "internal", "interop", "browser", "node_modules", "playwright-core")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("playwright-core not installed: run internal/interop/browser/setup.sh")
		}
		t.Skip("playwright-core not installed: run internal/interop/browser/setup.sh")
	}
	dir := outDir(t)
	// Mount /cam is shared by the running paths; each idle path gets a mount
	// of its own, so its pipeline starts with the pull as a real camera's
	// session does, instead of joining a running GOP.
	const runs = 10
	camArgs := []string{"--path", "/cam"}
	for i := range runs {
		camArgs = append(camArgs, "--path", "/idle"+strconv.Itoa(i))
	}
	cam, err := StartCamera(dir, os.Getenv(envClip), 0, camArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Stop(5 * time.Second) })

	webPort, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	icePort, err := FreeUDPPair()
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]map[string]any{
		"locked": {"source": "demo"},
		"demo":   {"source": "demo", "sourceOnDemand": false},
		"cam":    {"source": cam.URL},
		"cam_on": {"source": cam.URL, "sourceOnDemand": false},
	}
	// A MediaMTX-style runOnDemand webcam: ffmpeg publishes a libx264 test
	// source when the page asks for the path.
	played := []string{"demo", "cam", "cam_on"}
	if out, _, err := run(20*time.Second, "ffmpeg", "-hide_banner", "-encoders"); err == nil && strings.Contains(out, "libx264") {
		paths["cam_webcam"] = map[string]any{
			"source": "publisher", "runOnDemandCloseAfter": "1s",
			"runOnDemand": "ffmpeg -nostdin -v error -re -f lavfi -i testsrc=size=640x360:rate=25 -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:$RTSP_PORT/$MTX_PATH",
		}
		played = append(played, "cam_webcam")
	}
	for i := range runs {
		paths["cam_idle"+strconv.Itoa(i)] = map[string]any{
			"source":                   "rtsp://127.0.0.1:" + strconv.Itoa(cam.Port) + "/idle" + strconv.Itoa(i),
			"sourceOnDemandCloseAfter": "1s",
		}
	}
	a := startAgent(t, AgentOptions{
		Bin: os.Getenv(envAgentBin), Dir: dir, Paths: paths,
		Users: []map[string]any{
			{"user": "any", "pass": "", "ips": []string{}, "permissions": []map[string]any{{"action": "read", "path": "~^(demo|cam.*)$"}}},
			{"user": "ops", "pass": "s3cret", "ips": []string{}, "permissions": []map[string]any{{"action": "read"}}},
			{"user": "any", "pass": "", "ips": []string{"127.0.0.1/32"}, "permissions": []map[string]any{{"action": "publish"}}},
		},
		Sections: map[string]map[string]any{"webrtc": {
			"address":           "127.0.0.1:" + strconv.Itoa(webPort),
			"iceUDPMuxAddress":  "127.0.0.1:" + strconv.Itoa(icePort),
			"ipsFromInterfaces": false,
			"additionalHosts":   []string{"127.0.0.1"},
		}},
	})
	base := "http://127.0.0.1:" + strconv.Itoa(webPort)
	if err := WaitTCP("127.0.0.1:"+strconv.Itoa(webPort), 20*time.Second, a.Done()); err != nil {
		t.Fatalf("webrtc listener: %v\n%s", err, a.Tail(20))
	}

	for _, path := range played {
		t.Run("play "+path, func(t *testing.T) {
			shot := filepath.Join(dir, "browser-"+path+".png")
			var r playResult
			node(t, &r, "play", base+"/"+path, shot)
			if r.Error != "" {
				t.Fatalf("%s: %s; last state %+v\nconsole:\n%s\nagent:\n%s", path, r.Error, r.Last, strings.Join(r.Logs, "\n"), a.Tail(30))
			}
			if r.First.VideoWidth == 0 || r.Later.CurrentTime <= r.First.CurrentTime || r.Later.FramesDecoded <= r.First.FramesDecoded {
				t.Fatalf("%s: not playing: first %+v later %+v", path, r.First, r.Later)
			}
			if _, err := os.Stat(shot); err != nil {
				t.Errorf("screenshot: %v", err)
			}
			t.Logf("%s: %dx%d %s, %d frames decoded, first frame %.0f ms after POST, mean jitter-buffer delay %.0f ms; screenshot %s",
				path, r.Later.VideoWidth, r.Later.VideoHeight, r.Later.Codec, r.Later.FramesDecoded, r.First.FirstFrameMs, r.Later.JitterMs, shot)
		})
	}

	t.Run("credentials asked on 401", func(t *testing.T) {
		var r struct {
			Error string        `json:"error"`
			Asked browserState  `json:"asked"`
			Later browserState  `json:"later"`
			Last  *browserState `json:"last"`
		}
		node(t, &r, "login", base+"/locked", "ops:s3cret")
		if r.Error != "" {
			t.Fatalf("%s; last state %+v", r.Error, r.Last)
		}
		if !strings.Contains(r.Asked.Status, "credentials") || r.Later.FramesDecoded == 0 {
			t.Fatalf("asked %+v, later %+v", r.Asked, r.Later)
		}
	})

	t.Run("first frame", func(t *testing.T) {
		var report []string
		for _, c := range []struct{ label, url string }{
			{"demo (running)", base + "/demo"},
			{"camera, running", base + "/cam_on"},
			{"camera, idle on demand", base + "/cam_idle{i}"},
		} {
			var r measureResult
			node(t, &r, "measure", c.url, strconv.Itoa(runs))
			if r.Error != "" || len(r.Times) != runs {
				t.Fatalf("%s: %s %v", c.label, r.Error, r.Times)
			}
			line := fmt.Sprintf("%-24s median %4.0f ms  runs %v %s", c.label, r.Median, r.Times, strings.Join(r.Logs, "; "))
			report = append(report, line)
			t.Log(line)
		}
		if err := os.WriteFile(filepath.Join(dir, "first-frame.txt"), []byte(strings.Join(report, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	})

	t.Run("plays again after an agent restart", func(t *testing.T) {
		reconnectAfterRestart(t, a, base+"/demo", "127.0.0.1:"+strconv.Itoa(webPort))
	})
}

// reconnectAfterRestart keeps a player page open while the agent is stopped
// and started again, and expects the page to play again by itself.
func reconnectAfterRestart(t *testing.T, a *Agent, url, webAddr string) {
	root, _ := ModuleRoot()
	cmd := exec.Command("node", filepath.Join(root, "internal", "interop", "browser", "browser_play.mjs"), "reconnect", url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	defer func() {
		// Our own child, by PID: SIGTERM lets playwright close chromium first.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		killer := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		for range lines {
		}
		_ = cmd.Wait()
		killer.Stop()
	}()
	next := func(what string, d time.Duration) map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("node exited before %s; stderr:\n%s", what, stderr.String())
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: %v: %s", what, err, l)
			}
			if e, _ := m["error"].(string); e != "" {
				t.Fatalf("%s: %s\n%s", what, e, l)
			}
			return m
		case <-time.After(d):
			t.Fatalf("timed out waiting for %s", what)
		}
		return nil
	}
	next("the page to play", 60*time.Second)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if took, killed := a.Stop(10 * time.Second); killed || took > 5*time.Second {
		t.Errorf("agent stop took %v (killed %v)", took, killed)
	}
	if err := a.Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := WaitTCP(webAddr, 20*time.Second, a.Done()); err != nil {
		t.Fatal(err)
	}
	m := next("the page to play again", 120*time.Second)
	t.Logf("lost: %v; playing again: %v", m["lost"], m["again"])
}
