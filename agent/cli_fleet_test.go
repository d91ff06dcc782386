package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/internal/cmd/fleetsim/sim/simtest"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

func runFleetCLI(t *testing.T, broker string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := fleetMain(ctx, append([]string{"-broker", broker}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestFleetCmdMany: a command to a selection prints one row per agent and
// a summary, exits 0 only when every agent answered ok; --json gives the
// same per agent.
func TestFleetCmdMany(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	simtest.Start(t, b.URL(), 4, nil)

	code, out, errOut := runFleetCLI(t, b.URL(), "cmd", "-l", "site=plant-0", "ping")
	if code != 0 || !strings.Contains(out, "sim-00  ok") || !strings.Contains(out, "sim-02  ok") || strings.Contains(out, "sim-01") ||
		!strings.Contains(out, "2 agents: 2 ok") {
		t.Fatalf("cmd -l: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "cmd", "--all", "nope", `{"x":1}`)
	if code != 1 || strings.Count(out, "  unknown_command  ") != 4 || !strings.Contains(out, "4 agents: 4 unknown_command") {
		t.Fatalf("cmd --all nope: %d\n%s", code, out)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "-timeout", "1s", "cmd", "sim-01,sim-gone", "ping", "-json")
	var rows []struct {
		ID, Outcome string
		OK          bool
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 1 || len(rows) != 2 ||
		!rows[0].OK || rows[1].OK || rows[1].Outcome != "no reply (offline)" {
		t.Fatalf("cmd ids --json: %d %v\n%s", code, err, out)
	}
	// One agent: the reply as before.
	if code, out, _ = runFleetCLI(t, b.URL(), "cmd", "sim-03", "ping"); code != 0 || !strings.Contains(out, `"pong": true`) {
		t.Fatalf("cmd one agent: %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"cmd", "-l", "site=a", "--all", "ping"}, {"cmd", "-l", "a b", "ping"}, {"cmd", "-l", "x=y"}, {"desired", "bogus"}} {
		if code, _, _ := runFleetCLI(t, b.URL(), bad...); code == 0 {
			t.Errorf("%v: exit 0", bad)
		}
	}
	code, out, _ = runFleetCLI(t, b.URL(), "ls", "-l", "line=1")
	if code != 0 || !strings.Contains(out, "sim-01") || strings.Contains(out, "sim-00") || !strings.Contains(out, "line=1,site=plant-1") {
		t.Fatalf("ls -l: %d\n%s", code, out)
	}
}

// TestFleetDesiredCLI: diff shows what set would change, set writes with a
// bumped version and waits for the reports, get shows the convergence.
func TestFleetDesiredCLI(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	simtest.Start(t, b.URL(), 3, nil)
	file := filepath.Join(t.TempDir(), "desired.yml")
	if err := os.WriteFile(file, []byte("paths:\n  door: {source: publisher}\nlabels: {zone: 4}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runFleetCLI(t, b.URL(), "desired", "diff", "--all", file)
	if code != 1 || strings.Count(out, "+ paths.door.source") != 3 || !strings.Contains(out, "version 0 -> 1") {
		t.Fatalf("diff before: %d\n%s", code, out)
	}
	code, out, errOut := runFleetCLI(t, b.URL(), "desired", "set", "-l", "site=plant-0", file, "-wait", "10s")
	if code != 0 || !strings.Contains(out, "sim-00  converged  1") || !strings.Contains(out, "2 agents: 2 converged") {
		t.Fatalf("set: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "desired", "get", "--all")
	if code != 0 || !strings.Contains(out, "sim-01  none") || !strings.Contains(out, "sim-02  converged") {
		t.Fatalf("get: %d\n%s", code, out)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "desired", "diff", "sim-00", file)
	if code != 0 || !strings.Contains(out, "sim-00: no change") {
		t.Fatalf("diff after: %d\n%s", code, out)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "desired", "get", "sim-00")
	var one struct {
		State   string
		Desired struct{ Version int }
	}
	if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 || one.State != "converged" || one.Desired.Version != 1 {
		t.Fatalf("get one: %d %v\n%s", code, err, out)
	}
	if code, out, _ = runFleetCLI(t, b.URL(), "ls", "-l", "zone=4"); code != 0 || !strings.Contains(out, "sim-00") || strings.Contains(out, "sim-01") {
		t.Fatalf("ls by a desired label: %d\n%s", code, out)
	}
	if err := os.WriteFile(file, []byte("version: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = runFleetCLI(t, b.URL(), "desired", "set", "--all", file); code != 1 || !strings.Contains(errOut, "version") {
		t.Fatalf("set with a version: %d %s", code, errOut)
	}
}

// TestFleetRolloutCLI: a rollout halts by itself when the second wave
// fails and exits 1; the status shows it; resumed with a higher limit it
// finishes. Then a rollout whose CLI is SIGKILLed in its second wave is
// resumed by another CLI and finishes with no agent updated twice.
func TestFleetRolloutCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI as a child process")
	}
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	sims := simtest.Start(t, b.URL(), 8, func(i int, o *sim.Options) {
		o.UpdateTime = 300 * time.Millisecond
		if i == 1 || i == 2 {
			o.Outcome = func(v string) sim.Outcome {
				if v == "v2.0.0" {
					return sim.RolledBack
				}
				return sim.Committed
			}
		}
	})
	sig := filepath.Join(t.TempDir(), "camgate.minisig")
	if err := os.WriteFile(sig, []byte(fakeSignature), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"rollout", "--all", "-url", "https://example.invalid/c", "-sha256", strings.Repeat("0", 64), "-sig", sig,
		"-version", "v2.0.0", "-canary", "1", "-max-failures", "1", "-wave-timeout", "20s", "-id", "r-one"}
	code, out, errOut := runFleetCLI(t, b.URL(), args...)
	if code != 1 || !strings.Contains(errOut, "halted") || !strings.Contains(out, "wave 2 started: 2 agents") {
		t.Fatalf("rollout: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "rollout", "status", "r-one")
	if code != 0 || !strings.Contains(out, "halted") || !strings.Contains(out, "sim-01  rolled_back") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	if code, _, errOut = runFleetCLI(t, b.URL(), "rollout", "resume", "r-one"); code != 1 || !strings.Contains(errOut, "max-failures") {
		t.Fatalf("resume a halted rollout without a new limit: %d %s", code, errOut)
	}
	code, out, errOut = runFleetCLI(t, b.URL(), "rollout", "resume", "r-one", "-max-failures", "2")
	if code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("resume: %d\n%s%s", code, out, errOut)
	}
	for i, a := range sims.Agents {
		if want := i != 1 && i != 2; (a.Version() == "v2.0.0") != want {
			t.Fatalf("%s runs %s", a.ID(), a.Version())
		}
	}

	// The CLI killed in the middle of the second wave.
	args[len(args)-1] = "r-two"
	for i, a := range args {
		if a == "v2.0.0" {
			args[i] = "v3.0.0"
		}
	}
	cmd := exec.Command(os.Args[0], append([]string{"fleet", "-broker", b.URL()}, args...)...)
	cmd.Env = append(os.Environ(), "CGTEST_AS_AGENT=1")
	var childOut testlog.Buffer
	cmd.Stdout, cmd.Stderr = &childOut, &childOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited }) // our child, by its pid
	f := dialFleetT(t, b.URL())
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := f.LoadRollout(ctx, "r-two")
		cancel()
		if err == nil && len(r.Waves) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout never reached its second wave:\n%s", childOut.String())
		}
		time.Sleep(20 * time.Millisecond) // another process's progress, seen on the broker
	}
	_ = cmd.Process.Kill() // SIGKILL, our child
	<-exited
	code, out, errOut = runFleetCLI(t, b.URL(), "rollout", "resume", "r-two", "-force")
	if code != 0 || !strings.Contains(out, "done") {
		t.Fatalf("resume after the kill: %d\n%s%s\nkilled CLI:\n%s", code, out, errOut, childOut.String())
	}
	for _, a := range sims.Agents {
		// One update each for v2 (two rolled back) and v3.
		if a.Version() != "v3.0.0" || a.Updates() != 2 {
			t.Fatalf("%s runs %s after %d updates", a.ID(), a.Version(), a.Updates())
		}
	}
	// By ids; with ids and a selector at once it is refused.
	if code, _, _ = runFleetCLI(t, b.URL(), "rollout", "-l", "site=plant-0", "sim-00", "-url", "https://x.invalid/c"); code != 2 {
		t.Fatalf("rollout with ids and a selector: exit %d", code)
	}
	ids := append([]string{"rollout", "sim-00,sim-03"}, args[2:]...)
	for i, a := range ids {
		switch a {
		case "v3.0.0":
			ids[i] = "v4.0.0"
		case "r-two":
			ids[i] = "r-three"
		}
	}
	if code, out, errOut = runFleetCLI(t, b.URL(), ids...); code != 0 || sims.Agents[0].Version() != "v4.0.0" || sims.Agents[3].Version() != "v4.0.0" || sims.Agents[1].Version() != "v3.0.0" {
		t.Fatalf("rollout by ids: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runFleetCLI(t, b.URL(), "rollout", "status")
	if code != 0 || !strings.Contains(out, "r-one") || !strings.Contains(out, "r-two") {
		t.Fatalf("rollout list: %d\n%s", code, out)
	}
}

const fakeSignature = "untrusted comment: signature from minisign secret key\nRUQ...\ntrusted comment: timestamp:0\nAAAA\n"

// TestFleetLiveOutput: on a terminal the rollout table is redrawn in
// place and the progress bar drawn and cleared; elsewhere neither is
// written to stderr.
func TestFleetLiveOutput(t *testing.T) {
	r, err := fleet.NewRollout(fleet.RolloutPlan{URL: "https://x.invalid/c", SHA256: "00", Signature: "s", Agents: []string{"a", "b", "c"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.Waves = []fleet.RolloutWave{{Start: 0, Size: 1, StartedAt: time.Now()}}
	r.Progress["a"] = &fleet.RolloutAgent{State: fleet.RolloutCommitted}
	for _, terminal := range []bool{true, false} {
		var out, errOut bytes.Buffer
		cl := &fleetCLI{f: newFleetFlags(io.Discard), stdout: &out, stderr: &errOut, terminal: terminal}
		live := cl.liveTable()
		live(r)
		live(r)
		bar := cl.progress("replies", 10)
		bar.set(10, 10)
		bar.done()
		redrawn := strings.Contains(errOut.String(), "\x1b[") && strings.Contains(errOut.String(), "WAVE") && strings.Contains(errOut.String(), "replies [####")
		if redrawn != terminal {
			t.Fatalf("terminal %v: stderr %q", terminal, errOut.String())
		}
		if !terminal && strings.Count(out.String(), "wave 1 started") != 1 {
			t.Fatalf("not a terminal: stdout %q", out.String())
		}
	}
	if n, err := canaryCount("1%", 10000); err != nil || n != 100 {
		t.Fatalf("1%% of 10000: %d %v", n, err)
	}
	if n, err := canaryCount("0.5%", 10); err != nil || n != 1 {
		t.Fatalf("0.5%% of 10: %d %v", n, err)
	}
	for _, bad := range []string{"0", "-1", "0%", "101%", "x"} {
		if _, err := canaryCount(bad, 10); err == nil {
			t.Errorf("canary %q accepted", bad)
		}
	}
}
