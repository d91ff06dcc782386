//go:build interop

package interop

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"
)

var clipProbe = probed{Codec: "h264", Width: 1280, Height: 720}

// A GStreamer RTSP camera pulled on demand by the agent, over each of the
// agent's source transports, read back by ffprobe and ffmpeg.
func TestCameraPulledOnDemand(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	a := startAgent(t, AgentOptions{Dir: dir, Paths: map[string]map[string]any{
		"cam":     {"source": cam.URL},
		"cam_tcp": {"source": cam.URL, "rtspTransport": "tcp"},
		"cam_udp": {"source": cam.URL, "rtspTransport": "udp"},
	}})
	for _, path := range []string{"cam", "cam_tcp", "cam_udp"} {
		t.Run(path, func(t *testing.T) {
			assertProbe(t, a.URL(path, ""), clipProbe)
			assertDecodes(t, a.URL(path, ""), "tcp", 50)
		})
	}
	t.Run("reader over udp", func(t *testing.T) {
		assertDecodes(t, a.URL("cam", ""), "udp", 50)
	})
}

// ffmpeg publishing with credentials to a publisher path, a reader receiving
// it; wrong and missing credentials refused; a second publisher refused.
func TestFFmpegPublishWithAuth(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	clip := Clip(t)
	a := startAgent(t, AgentOptions{
		Dir: dir,
		Users: []map[string]any{
			{"user": "any", "pass": "", "ips": []string{}, "permissions": []map[string]any{{"action": "read"}}},
			{"user": "pub", "pass": "s3cret", "ips": []string{}, "permissions": []map[string]any{{"action": "publish"}}},
		},
		Paths: map[string]map[string]any{"door": {"source": "publisher"}},
	})
	publish := func(label, userinfo string) *Proc {
		p, err := StartProc(dir, label, "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
			"-i", clip, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", a.URL("door", userinfo))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		return p
	}
	refused := func(t *testing.T, p *Proc) {
		t.Helper()
		if err := p.Wait(20 * time.Second); err == nil {
			t.Fatalf("publisher %s exited 0, want refusal; output:\n%s", p.Name, p.Tail(10))
		}
		if out := p.Output(); !strings.Contains(out, "401") && !strings.Contains(strings.ToLower(out), "unauthorized") {
			t.Errorf("publisher %s: want a 401 Unauthorized, got:\n%s", p.Name, p.Tail(10))
		}
	}
	t.Run("wrong password refused", func(t *testing.T) {
		refused(t, publish("ffmpeg-wrongpass", "pub:wrong"))
	})
	t.Run("anonymous refused", func(t *testing.T) {
		refused(t, publish("ffmpeg-anon", ""))
	})
	t.Run("publish and read", func(t *testing.T) {
		p := publish("ffmpeg-pub", "pub:s3cret")
		if err := waitReadable(a.URL("door", ""), 20*time.Second); err != nil {
			t.Fatalf("%v\npublisher output:\n%s", err, p.Tail(10))
		}
		assertProbe(t, a.URL("door", ""), clipProbe)
		assertDecodes(t, a.URL("door", ""), "tcp", 50)
		t.Run("second publisher refused", func(t *testing.T) {
			q, err := StartProc(dir, "ffmpeg-second", "ffmpeg", "-nostdin", "-v", "error", "-re", "-i", clip,
				"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", a.URL("door", "pub:s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Wait(20 * time.Second); err == nil {
				t.Errorf("second publisher exited 0, want refusal; output:\n%s", q.Tail(10))
			}
			if ok, _ := p.Exited(); ok {
				t.Errorf("first publisher was dropped when the second one came: %s", p.Tail(10))
			}
		})
		if ok, err := p.Exited(); ok {
			t.Errorf("publisher exited early (%v):\n%s", err, p.Tail(10))
		}
	})
}

// The default config lets the box itself publish anonymously to any name
// (all_others), and anyone read it back.
func TestFFmpegPublishAnonymousDefault(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	dir := outDir(t)
	a := startAgent(t, AgentOptions{Dir: dir})
	p, err := StartProc(dir, "ffmpeg-pub", "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
		"-i", Clip(t), "-c", "copy", "-f", "rtsp", a.URL("mystream", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	if err := waitReadable(a.URL("mystream", ""), 20*time.Second); err != nil {
		t.Fatalf("%v\npublisher output:\n%s", err, p.Tail(10))
	}
	assertProbe(t, a.URL("mystream", ""), clipProbe)
	assertDecodes(t, a.URL("mystream", ""), "tcp", 50)
	t.Run("publish over udp", func(t *testing.T) {
		q, err := StartProc(dir, "ffmpeg-pub-udp", "ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1",
			"-i", Clip(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "udp", a.URL("mystream_udp", ""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Stop(5 * time.Second) })
		if err := waitReadable(a.URL("mystream_udp", ""), 20*time.Second); err != nil {
			t.Fatalf("%v\npublisher output:\n%s", err, q.Tail(10))
		}
		assertDecodes(t, a.URL("mystream_udp", ""), "tcp", 50)
	})
	t.Run("unknown path 404", func(t *testing.T) {
		_, errOut, err := run(20*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", a.URL("nobody_here", ""))
		if err == nil {
			t.Fatal("ffprobe of a path nobody publishes succeeded")
		}
		if !strings.Contains(errOut, "404") {
			t.Errorf("want 404 Not Found, ffprobe said: %s", errOut)
		}
	})
}

// The built-in demo path decodes cleanly in ffmpeg over TCP and UDP.
func TestDemoDecodesInFFmpeg(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, AgentOptions{})
	got, err := ffprobe(a.URL("demo", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got.Codec != "h264" || got.Width == 0 || got.Height == 0 {
		t.Errorf("demo: ffprobe = %+v, want h264 with a size", got)
	}
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			assertDecodes(t, a.URL("demo", ""), transport, 100)
		})
	}
}

var (
	gstPlayingRE = regexp.MustCompile(`element "pipeline0" \(state-changed\).*new-state=\(GstState\)playing`)
	gstEOSRE     = regexp.MustCompile(`Got EOS from element "pipeline0"`)
)

// GStreamer's rtspsrc reads the demo path over TCP and over UDP, reaches
// PLAYING and decodes 50 buffers (identity eos-after ends the pipeline).
func TestGStreamerReadsDemo(t *testing.T) {
	need(t, "gst-launch-1.0")
	a := startAgent(t, AgentOptions{})
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			out, errOut, err := run(60*time.Second, "gst-launch-1.0", "-m",
				"rtspsrc", "location="+a.URL("demo", ""), "protocols="+proto, "latency=0",
				"!", "decodebin", "!", "identity", "eos-after=50", "!", "fakesink")
			all := out + errOut
			if err != nil {
				t.Fatalf("gst-launch-1.0 rtspsrc protocols=%s: %v\n%s", proto, err, tail(all, 30))
			}
			if !gstPlayingRE.MatchString(all) {
				t.Errorf("pipeline never reached PLAYING:\n%s", tail(all, 30))
			}
			if !gstEOSRE.MatchString(all) {
				t.Errorf("pipeline did not reach EOS after 50 decoded buffers:\n%s", tail(all, 30))
			}
			if strings.Contains(all, "ERROR:") {
				t.Errorf("pipeline reported an error:\n%s", tail(all, 30))
			}
		})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// On demand as SPEC section 3 says, seen from the camera's side: no pull
// before the first reader, one pull shared by readers arriving within
// sourceOnDemandCloseAfter, and the camera let go after that delay.
func TestCameraOnDemandLifecycle(t *testing.T) {
	need(t, "ffmpeg")
	dir := outDir(t)
	cam := startCamera(t, dir, 0)
	closeAfter := 3 * time.Second
	a := startAgent(t, AgentOptions{Dir: dir, Paths: map[string]map[string]any{
		"cam": {"source": cam.URL, "sourceOnDemandCloseAfter": closeAfter.String()},
	}})
	connected := func() int { return strings.Count(cam.Output(), "CLIENT connected") }
	closed := func() int { return strings.Count(cam.Output(), "CLIENT closed") }

	// Absence of a pull has no event to wait for: give the agent a moment.
	time.Sleep(1500 * time.Millisecond)
	if n := connected(); n != 0 {
		t.Fatalf("camera pulled %d time(s) with no reader", n)
	}
	assertDecodes(t, a.URL("cam", ""), "tcp", 25)
	if n := connected(); n != 1 {
		t.Fatalf("camera connections after the first reader: %d, want 1", n)
	}
	assertDecodes(t, a.URL("cam", ""), "tcp", 25)
	left := time.Now()
	if n := connected(); n != 1 {
		t.Errorf("a reader within sourceOnDemandCloseAfter opened connection %d to the camera, want the running source reused", n)
	}
	if err := cam.WaitOutput("CLIENT closed", closeAfter+10*time.Second); err != nil {
		t.Fatalf("camera not let go after the last reader: %v", err)
	}
	if took := time.Since(left); took < closeAfter-500*time.Millisecond {
		t.Errorf("camera let go %v after the last reader, before sourceOnDemandCloseAfter %v", took, closeAfter)
	}
	if n := closed(); n != 1 {
		t.Errorf("camera saw %d closes, want 1", n)
	}
	// And it starts again for the next reader.
	assertDecodes(t, a.URL("cam", ""), "tcp", 25)
	if n := connected(); n != 2 {
		t.Errorf("camera connections after a reader following the close: %d, want 2", n)
	}
}

// Reading restricted to users, one with a plain password and one whose
// password is stored as a sha256 hash (SPEC section 12): anonymous,
// wrong-password and unknown readers refused with 401; ffprobe, ffmpeg and
// GStreamer's rtspsrc (user-id/user-pw) get in with the right password. Both
// clients answer a Digest challenge when one is offered, so a hashed password
// only works if the server lets them use Basic.
func TestReadWithPassword(t *testing.T) {
	need(t, "ffmpeg", "ffprobe", "gst-launch-1.0")
	sum := sha256.Sum256([]byte("h4shed-pw"))
	a := startAgent(t, AgentOptions{Users: []map[string]any{
		{"user": "viewer", "pass": "v1ewer-pw", "ips": []string{}, "permissions": []map[string]any{{"action": "read"}}},
		{"user": "hashed", "pass": "sha256:" + base64.StdEncoding.EncodeToString(sum[:]), "ips": []string{}, "permissions": []map[string]any{{"action": "read"}}},
	}})
	for _, c := range []struct{ name, userinfo string }{
		{"anonymous", ""}, {"wrong password", "viewer:nope"}, {"wrong password hashed user", "hashed:nope"}, {"unknown user", "eve:v1ewer-pw"},
	} {
		t.Run(c.name+" refused", func(t *testing.T) {
			_, errOut, err := run(20*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", a.URL("demo", c.userinfo))
			if err == nil {
				t.Fatal("ffprobe read the demo path without valid credentials")
			}
			if !strings.Contains(errOut, "401") {
				t.Errorf("want 401 Unauthorized, ffprobe said: %s", errOut)
			}
		})
	}
	for _, u := range []struct{ name, pass string }{{"viewer", "v1ewer-pw"}, {"hashed", "h4shed-pw"}} {
		t.Run("ffmpeg as "+u.name, func(t *testing.T) {
			assertDecodes(t, a.URL("demo", u.name+":"+u.pass), "tcp", 25)
		})
		t.Run("gstreamer as "+u.name, func(t *testing.T) {
			out, errOut, err := run(60*time.Second, "gst-launch-1.0", "-m",
				"rtspsrc", "location="+a.URL("demo", ""), "user-id="+u.name, "user-pw="+u.pass, "protocols=tcp",
				"!", "decodebin", "!", "identity", "eos-after=25", "!", "fakesink")
			all := out + errOut
			if err != nil || !gstEOSRE.MatchString(all) {
				t.Fatalf("gst-launch-1.0 rtspsrc user-id=%s: %v\n%s", u.name, err, tail(all, 8))
			}
		})
	}
}
