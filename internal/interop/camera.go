package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Python is the interpreter for the camera script: Debian's, which has gi
// (a pyenv or venv python3 first on PATH usually has not). CAMERA_PYTHON
// overrides it.
func Python() string {
	if p := os.Getenv("CAMERA_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// ClipArgs is the ffmpeg command line (after "ffmpeg") that makes the test
// and bench clip: H.264 constrained baseline 1280x720 25 fps ~2 Mbit/s,
// an IDR every 50 frames (GOP 2 s), no B-frames, 10 s. testdata/camera/README.md
// shows the same command.
func ClipArgs(out string) []string {
	return []string{
		"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "10",
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
		"-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0",
		"-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", out,
	}
}

// MakeClip generates the clip into dir (once: an existing clip.mp4 is reused)
// and returns its path.
func MakeClip(dir string) (string, error) {
	out := filepath.Join(dir, "clip.mp4")
	if st, err := os.Stat(out); err == nil && st.Size() > 0 {
		return out, nil
	}
	tmp := filepath.Join(dir, "clip.tmp.mp4")
	if b, err := exec.Command("ffmpeg", ClipArgs(tmp)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("make clip: ffmpeg: %w\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("make clip: %w", err)
	}
	return out, nil
}

// Camera is a running testdata/camera/rtsp_camera.py.
type Camera struct {
	*Proc
	URL  string // rtsp://127.0.0.1:PORT/cam
	Port int
}

// StartCamera starts the GStreamer camera serving clip (or a live x264enc
// test pattern when clip is "live") on 127.0.0.1:port (0: any free port)
// and waits for its READY line.
func StartCamera(logDir, clip string, port int, extra ...string) (*Camera, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	args := []string{filepath.Join(root, "testdata", "camera", "rtsp_camera.py"), "--port", strconv.Itoa(port)}
	if clip == "live" {
		args = append(args, "--live")
	} else {
		args = append(args, "--clip", clip)
	}
	args = append(args, extra...)
	p, err := StartProc(logDir, "camera", Python(), args...)
	if err != nil {
		return nil, err
	}
	if err := p.WaitOutput("READY rtsp://", 20*time.Second); err != nil {
		p.Kill()
		return nil, fmt.Errorf("camera: %w", err)
	}
	c := &Camera{Proc: p}
	for _, line := range strings.Split(p.Output(), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "READY "); ok {
			c.URL = rest
			break
		}
	}
	hostPort := strings.TrimPrefix(c.URL, "rtsp://")
	hostPort, _, _ = strings.Cut(hostPort, "/")
	_, portStr, _ := strings.Cut(hostPort, ":")
	if c.Port, err = strconv.Atoi(portStr); err != nil {
		p.Kill()
		return nil, fmt.Errorf("camera: cannot parse READY line %q", c.URL)
	}
	return c, nil
}
