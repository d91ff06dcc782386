//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/internal/updatetest"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

// TestUpdateWithMosquitto: agent.update through Debian's mosquitto. A
// candidate that exits at start is rolled back and the running agent
// serves RTSP to ffmpeg again; a good release commits, the retained
// status says its version and ffmpeg decodes from it. The installed
// binary is the race build, so the supervision of the trial runs under
// the race detector.
func TestUpdateWithMosquitto(t *testing.T) {
	dir := outDir(t)
	_, port := startMosquitto(t, dir)
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	bins := t.TempDir()
	v2 := updatetest.BuildAgent(t, bins, "v2")
	bad := updatetest.BuildBad(t, bins, "exit1", "v3")
	key := updatetest.NewKey(t)
	srv := updatetest.NewServer(t)

	inst := filepath.Join(bins, "installed", "camgate")
	_ = os.MkdirAll(filepath.Dir(inst), 0o755)
	raw, err := os.ReadFile(AgentBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inst, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, AgentOptions{Bin: inst, Dir: dir, Sections: map[string]map[string]any{
		"uplink": {"broker": broker, "healthInterval": "1s"},
		"update": {"publicKeys": []string{key.PublicKey()}, "trialTimeout": "20s"},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := fleet.Dial(ctx, fleet.Options{Broker: broker})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msgs, stop, err := f.Subscribe(ctx, "cg-interop", 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	statusVersion := func() string {
		var st uplink.Status
		_ = json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/status")), &st)
		return st.Version
	}
	initial := statusVersion()

	send := func(name, path, version string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		args, _ := json.Marshal(update.Request{URL: srv.Put(name, b), SHA256: updatetest.SHA256(b), Signature: key.Sign(b), Version: version})
		r, err := f.Command(ctx, "cg-interop", "agent.update", args)
		if err != nil || !r.OK {
			t.Fatalf("agent.update %s: %+v %v", version, r, err)
		}
	}
	wait := func(typ string) map[string]any {
		t.Helper()
		for {
			select {
			case m := <-msgs:
				var ev struct {
					Type   string         `json:"type"`
					Detail map[string]any `json:"detail"`
				}
				if m.Kind == uplink.KindEvents && json.Unmarshal(m.Payload, &ev) == nil && ev.Type == typ {
					return ev.Detail
				}
			case <-ctx.Done():
				t.Fatalf("no %s event; agent log:\n%s", typ, a.Tail(40))
			}
		}
	}

	send("bad", bad, "v3")
	d := wait(uplink.EventUpdateRolledBack)
	if r, _ := d["reason"].(string); !strings.Contains(r, "exit status 1") {
		t.Fatalf("rollback reason %q", r)
	}
	if v := statusVersion(); v != initial {
		t.Fatalf("status version %q after the rollback, want %q", v, initial)
	}
	assertDecodes(t, a.URL("demo", ""), "tcp", 10)

	send("v2", v2, "v2")
	d = wait(uplink.EventUpdateCommitted)
	if d["version"] != "v2" {
		t.Fatalf("committed %v", d)
	}
	if v := statusVersion(); v != "v2" {
		t.Fatalf("status version %q after the commit", v)
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(a.PID()) + "/exe"); !strings.Contains(exe, string(filepath.Separator)+"bin"+string(filepath.Separator)) {
		t.Fatalf("agent pid %d runs %s after the hand-over", a.PID(), exe)
	}
	assertDecodes(t, a.URL("demo", ""), "tcp", 10)
}

// TestReleaseSignatures runs packaging/release.sh (the script behind
// `task release`) for one target with a throwaway key, then checks the
// result with the real minisign tool and with `camgate verify`, and that
// both refuse a tampered archive.
func TestReleaseSignatures(t *testing.T) {
	need(t, "minisign", "sha256sum", "bash")
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	keyDir, dist := filepath.Join(work, "keys"), filepath.Join(work, "dist")
	if out, err := exec.Command("go", "run", filepath.Join(root, "internal", "cmd", "release"), "keygen", "-dir", keyDir).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", filepath.Join(root, "packaging", "release.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DIST="+dist, "PACKAGE_TARGETS=linux_amd64", "VERSION=v9.9.9",
		"RELEASE_KEY="+filepath.Join(keyDir, "camgate.key"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	pubFile, _ := os.ReadFile(filepath.Join(keyDir, "camgate.pub"))
	pub := strings.Split(strings.TrimSpace(string(pubFile)), "\n")[1]
	archive := filepath.Join(dist, "camgate_9.9.9_linux_amd64.tar.gz")
	for _, args := range [][]string{
		{"-Vm", filepath.Join(dist, "SHA256SUMS"), "-P", pub},
		{"-Vm", archive, "-P", pub},
		{"-Vm", filepath.Join(dist, "camgate_9.9.9_amd64.deb"), "-P", pub},
	} {
		if out, err := exec.Command("minisign", args...).CombinedOutput(); err != nil {
			t.Fatalf("minisign %v: %v\n%s", args, err, out)
		}
	}
	sums := exec.Command("sha256sum", "-c", "SHA256SUMS")
	sums.Dir = dist
	if out, err := sums.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	camgate := AgentBin(t)
	if out, err := exec.Command(camgate, "verify", archive, "-P", pub).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("camgate verify: %v\n%s", err, out)
	}
	// Tampered: one byte appended.
	bad := filepath.Join(work, "camgate_9.9.9_linux_amd64.tar.gz")
	raw, _ := os.ReadFile(archive)
	_ = os.WriteFile(bad, append(raw, 0), 0o644)
	sig, _ := os.ReadFile(archive + ".minisig")
	_ = os.WriteFile(bad+".minisig", sig, 0o644)
	if out, err := exec.Command("minisign", "-Vm", bad, "-P", pub).CombinedOutput(); err == nil {
		t.Fatalf("minisign accepted a tampered archive:\n%s", out)
	}
	if out, err := exec.Command(camgate, "verify", bad, "-P", pub).CombinedOutput(); err == nil {
		t.Fatalf("camgate verify accepted a tampered archive:\n%s", out)
	}
}
