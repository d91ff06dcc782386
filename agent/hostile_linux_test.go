package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/uplink"
)

// hostileConfig runs the agent with RTSP, the API and playback on
// loopback only.
func hostileConfig(t *testing.T) (file, rtsp, apiAddr, playback string) {
	t.Helper()
	rtsp, apiAddr, playback = freePort(t), freePort(t), freePort(t)
	body := fmt.Sprintf(`agent:
  dataDir: %s
  logLevel: info
rtsp:
  address: %s
  transports: [tcp]
webrtc:
  address: ""
hls:
  address: ""
api:
  address: %s
playback:
  address: %s
uplink:
  broker: ""
`, t.TempDir(), rtsp, apiAddr, playback)
	file = filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, rtsp, apiAddr, playback
}

func waitListening(t *testing.T, addr string, p *agentProc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not listening on %s:\n%s", addr, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
}

func childHealth(t *testing.T, apiAddr string) uplink.Health {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h uplink.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdleFloodBeyondTheFDLimit: the agent runs with RLIMIT_NOFILE a few
// descriptors above what it uses at rest; idle and half-sent RTSP
// connections take them all, so accept fails with EMFILE. The listener
// keeps retrying, the handshake deadline sheds the attackers, and a Go
// RTSP reader and ffmpeg (where installed) then play; the agent reports
// the accept errors and lets go of what the attack made it hold.
func TestIdleFloodBeyondTheFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15 s")
	}
	file, rtspAddr, apiAddr, _ := hostileConfig(t)
	p := startAgentProc(t, file)
	waitListening(t, rtspAddr, p)
	waitListening(t, apiAddr, p)
	pid := p.cmd.Process.Pid
	base := childHealth(t, apiAddr).Agent.Goroutines

	const spare = 16
	limit := uint64(openFDs(t, pid) + spare)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Skipf("prlimit on the child: %v", err)
	}

	// spare+8 attackers: more than the descriptors left, fewer than two
	// rounds of them, from four loopback addresses.
	attackStart := time.Now()
	var attackers []net.Conn
	for i := range spare + 8 {
		c := testcam.DialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%4), rtspAddr)
		if i%2 == 1 {
			_, _ = io.WriteString(c, "DESCRIBE rtsp://"+rtspAddr+"/demo RTSP/1.0\r\nCSeq: 1\r\n") // never finished
		}
		attackers = append(attackers, c)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.logs.String(), "accept failed") {
		if time.Now().After(deadline) {
			t.Fatalf("accept never failed under the limit of %d descriptors:\n%s", limit, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Legit readers, queued behind the attackers: ffmpeg waits as long as
	// it takes; the Go client times out after 5 s and tries again.
	ffmpegDone := make(chan error, 1)
	if ff, err := exec.LookPath("ffmpeg"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, ff, "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
			"-i", "rtsp://"+rtspAddr+"/demo", "-frames:v", "10", "-f", "null", "-")
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			ffmpegDone <- err
		}()
	} else {
		t.Log("ffmpeg not installed: Go reader only")
		ffmpegDone <- nil
	}
	readDeadline := time.Now().Add(40 * time.Second)
	for {
		rd, err := testcam.Read(t, "rtsp://"+rtspAddr+"/demo", false)
		if err == nil {
			rd.WaitPackets(t, 20, 10*time.Second)
			rd.Close()
			break
		}
		if time.Now().After(readDeadline) {
			t.Fatalf("legit reader never served: %v\n%s", err, p.logs.String())
		}
	}
	t.Logf("Go reader served %s after the attack began (descriptor limit %d)", time.Since(attackStart).Round(100*time.Millisecond), limit)
	if err := <-ffmpegDone; err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	t.Logf("ffmpeg done %s after the attack began", time.Since(attackStart).Round(100*time.Millisecond))

	h := childHealth(t, apiAddr)
	if !h.OK {
		t.Fatalf("health not ok after the attack: %+v", h.Listeners)
	}
	var rtsp uplink.ListenerHealth
	for _, l := range h.Listeners {
		if l.Name == "rtsp" {
			rtsp = l
		}
	}
	if rtsp.State != "up" || rtsp.AcceptErrors == 0 {
		t.Fatalf("rtsp listener %+v", rtsp)
	}
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `camgate_listener_accept_errors_total{listener="rtsp"} ` + strconv.FormatUint(rtsp.AcceptErrors, 10)
	if !strings.Contains(string(metrics), want) {
		t.Fatalf("metrics lack %q", want)
	}

	for _, c := range attackers {
		c.Close()
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		h := childHealth(t, apiAddr)
		if h.Agent.Goroutines <= base+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the attack, %d before", h.Agent.Goroutines, base)
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}
}

// TestDeadListenerExitsNonZero: when the RTSP or the playback listener
// fails for good (its socket is shut down under it: accept returns
// EINVAL), the agent does not run on without it: it exits with status 1
// for the service manager to restart it.
func TestDeadListenerExitsNonZero(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen func(rtsp, playback string) string
		logged string // names the listener in the agent's last word
	}{
		{"rtsp", func(rtsp, _ string) string { return rtsp }, "rtsp server"},
		{"playback", func(_, playback string) string { return playback }, "serve playback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, rtspAddr, apiAddr, playbackAddr := hostileConfig(t)
			p := startAgentProc(t, file)
			addr := tc.listen(rtspAddr, playbackAddr)
			waitListening(t, addr, p)
			waitListening(t, apiAddr, p)
			if h := childHealth(t, apiAddr); !h.OK {
				t.Fatalf("not ok at start: %+v", h.Listeners)
			}
			pid := p.cmd.Process.Pid
			fd := testcam.ListenerFD(t, pid, addr)
			pidfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				t.Skipf("pidfd_open: %v", err)
			}
			defer unix.Close(pidfd)
			dup, err := unix.PidfdGetfd(pidfd, fd, 0)
			if err != nil {
				t.Skipf("pidfd_getfd: %v", err)
			}
			defer unix.Close(dup)
			if err := unix.Shutdown(dup, unix.SHUT_RDWR); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("agent still running 10 s after its %s listener died:\n%s", tc.name, p.logs.String())
			}
			if code := p.cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit status %d, want 1:\n%s", code, p.logs.String())
			}
			if logs := p.logs.String(); !strings.Contains(logs, "listener ended") || !strings.Contains(logs, tc.logged) {
				t.Fatalf("the failure is not logged:\n%s", logs)
			}
		})
	}
}
