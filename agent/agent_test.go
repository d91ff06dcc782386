package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
)

// The test binary doubles as the camgate binary for process-level tests.
func TestMain(m *testing.M) {
	if os.Getenv("CGTEST_AS_AGENT") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "cgtest-") {
		os.Exit(commandHelper(os.Args[1], os.Args[2:])) // a path's runOn* command
	}
	goleak.VerifyTestMain(m)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testConfig writes a config on free loopback ports with nothing else
// listening and returns its path and RTSP address.
func testConfig(t *testing.T, dataDir, extra string) (string, string) {
	t.Helper()
	rtsp := freePort(t)
	body := fmt.Sprintf(`agent:
  dataDir: %s
  logLevel: debug
rtsp:
  address: %s
  transports: [tcp]
webrtc:
  address: ""
hls:
  address: ""
api:
  address: ""
playback:
  address: ""
uplink:
  broker: ""
%s`, dataDir, rtsp, extra)
	p := filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, rtsp
}

func startAgent(t *testing.T, file string, logs *testlog.Buffer) (*Agent, func() error) {
	t.Helper()
	cfg, err := conf.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(logs)
	a, err := New(cfg, Options{ConfigFile: file}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent stopped at start: %v", err)
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(shutdownGrace):
				runErr = errors.New("agent did not stop within the shutdown grace")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return a, stop
}

func TestAgentServesDemoAndStopsCleanly(t *testing.T) {
	file, addr := testConfig(t, t.TempDir(), "")
	logs := &testlog.Buffer{}
	a, stop := startAgent(t, file, logs)
	if !strings.HasPrefix(a.ID(), "cg-") {
		t.Fatalf("agent id %q", a.ID())
	}
	rd, err := testcam.Read(t, "rtsp://"+addr+"/demo", false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 25, 5*time.Second)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	select {
	case <-rd.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("reader not disconnected at shutdown")
	}
}

func TestSecondInstanceFailsFast(t *testing.T) {
	dir := t.TempDir()
	file, _ := testConfig(t, dir, "")
	_, _ = startAgent(t, file, &testlog.Buffer{})
	file2, _ := testConfig(t, dir, "")
	cfg, err := conf.Load(file2, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = New(cfg, Options{}, zerolog.Nop())
	if err == nil {
		t.Fatal("second agent on the same data directory started")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("second instance took %s to fail", d)
	}
	if !strings.Contains(err.Error(), "camgate.db") {
		t.Fatalf("error does not name the state file: %v", err)
	}
}

func TestBootCountAndIDPersist(t *testing.T) {
	dir := t.TempDir()
	file, _ := testConfig(t, dir, "")
	a1, stop := startAgent(t, file, &testlog.Buffer{})
	id, boot := a1.ID(), a1.store.BootCount()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	a2, stop2 := startAgent(t, file, &testlog.Buffer{})
	if a2.ID() != id || a2.store.BootCount() != boot+1 {
		t.Fatalf("after restart: id %s boot %d, want %s %d", a2.ID(), a2.store.BootCount(), id, boot+1)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	hole := testcam.BlackHole(t)
	cam := strings.Replace(hole, "rtsp://", "rtsp://admin:hunter2@", 1)
	file, addr := testConfig(t, t.TempDir(), fmt.Sprintf(`paths:
  cam:
    source: %s
    sourceOnDemandStartTimeout: 300ms
    readTimeout: 300ms
  yard:
    source: rtsp://op:swordfish@127.0.0.1:1/x
    sourceOnDemand: false
`, cam))
	logs := &testlog.Buffer{}
	a, stop := startAgent(t, file, logs)
	if _, err := testcam.Read(t, "rtsp://"+addr+"/cam", false); err == nil {
		t.Fatal("read of a hanging camera succeeded")
	}
	// The always-on path fails against a closed port and logs it.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "source failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no source failure logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var infos strings.Builder
	for _, p := range a.paths.Paths() {
		fmt.Fprintf(&infos, "%+v\n", p)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "swordfish"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("password %q in the logs:\n%s", secret, logs.String())
		}
		if strings.Contains(infos.String(), secret) {
			t.Fatalf("password %q in path info:\n%s", secret, infos.String())
		}
	}
	if !strings.Contains(infos.String(), "op:***@") {
		t.Fatalf("redacted source missing from path info:\n%s", infos.String())
	}
}

func TestCLI(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "camgate") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	file, _ := testConfig(t, t.TempDir(), "paths:\n  cam:\n    source: rtsp://admin:hunter2@10.0.0.64/s\n")
	out.Reset()
	if code := Main([]string{"check-config", "-c", file}, &out, &errb); code != 0 {
		t.Fatalf("check-config: %d %s", code, errb.String())
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "admin:***@10.0.0.64") {
		t.Fatalf("check-config output:\n%s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	_ = os.WriteFile(bad, []byte("rtsp:\n  adress: x\n"), 0o600)
	errb.Reset()
	if code := Main([]string{"check-config", "-c", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "bad.yml:2: rtsp.adress: unknown key") {
		t.Fatalf("bad config: %d %q", code, errb.String())
	}
	if code := Main([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

// TestSIGTERMGracefulShutdown runs the agent as a real process and stops
// it with SIGTERM while a reader is connected.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	file, addr := testConfig(t, t.TempDir(), "")
	cmd := exec.Command(os.Args[0], "run", "-c", file)
	cmd.Env = append(os.Environ(), "CGTEST_AS_AGENT=1")
	var logs testlog.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not listening: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rd, err := testcam.Read(t, "rtsp://"+addr+"/demo", false)
	if err != nil {
		t.Fatal(err)
	}
	rd.WaitPackets(t, 10, 5*time.Second)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", waitErr, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("not stopped 5 s after SIGTERM:\n%s", logs.String())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start))
	if !strings.Contains(logs.String(), "camgate stopped") {
		t.Fatalf("no clean stop logged:\n%s", logs.String())
	}
}
