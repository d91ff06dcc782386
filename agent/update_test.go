//go:build linux

package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/internal/updatetest"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// releases are the binaries the update tests serve: real agents stamped
// v1 (installed) and v2, and broken builds that pass the self-test.
type releases struct {
	v1, v2, exit1, hang string
}

func buildReleases(t *testing.T) releases {
	t.Helper()
	dir := t.TempDir()
	return releases{
		v1:    updatetest.BuildAgent(t, dir, "v1"),
		v2:    updatetest.BuildAgent(t, dir, "v2"),
		exit1: updatetest.BuildBad(t, dir, "exit1", "v3"),
		hang:  updatetest.BuildBad(t, dir, "hang", "v4"),
	}
}

// upBox is one box: an installed camgate on a data directory, talking to
// an in-process broker, updated from a local file server.
type upBox struct {
	t       *testing.T
	rel     releases
	srv     *updatetest.Server
	broker  *mqtttest.Broker
	key     updatetest.Key
	fleet   *fleet.Client
	col     *collector
	dir     string // the box's data directory
	file    string
	rtsp    string
	api     string
	inst    string // the installed binary
	proc    *exec.Cmd
	exited  chan struct{}
	logs    *testlog.Buffer
	trialTO time.Duration
	// startedAt is when start last ran the installed binary.
	startedAt time.Time
}

func newUpBox(t *testing.T, rel releases) *upBox {
	t.Helper()
	b := &upBox{t: t, rel: rel, srv: updatetest.NewServer(t), key: updatetest.NewKey(t), trialTO: 8 * time.Second}
	broker := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	b.broker = broker
	b.fleet = dialFleetT(t, broker.URL())
	b.col = collect(t, b.fleet, "cg-e2e")
	root := t.TempDir()
	b.dir = filepath.Join(root, "data")
	// The installed binary lives apart from the data directory, as
	// /usr/bin/camgate does.
	b.inst = filepath.Join(root, "usr", "camgate")
	_ = os.MkdirAll(filepath.Dir(b.inst), 0o755)
	raw, err := os.ReadFile(rel.v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.inst, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	b.file, b.rtsp, b.api = fleetConfig(t, b.dir, broker.URL(), fmt.Sprintf(`update:
  publicKeys: [%s]
  trialTimeout: %s
`, b.key.PublicKey(), b.trialTO))
	return b
}

// start runs the installed binary as the service manager would.
func (b *upBox) start() {
	t := b.t
	t.Helper()
	b.logs = &testlog.Buffer{}
	b.startedAt = time.Now()
	b.proc = exec.Command(b.inst, "run", "-c", b.file)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAMGATE_") && !strings.HasPrefix(kv, "CGTEST_") {
			b.proc.Env = append(b.proc.Env, kv)
		}
	}
	b.proc.Stdout, b.proc.Stderr = b.logs, b.logs
	if err := b.proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	b.exited = exited
	p := b.proc
	go func() { _ = p.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = p.Process.Kill() // our child, by its pid
		<-exited
	})
}

// kill SIGKILLs the agent (its trial child dies with it).
func (b *upBox) kill() {
	b.t.Helper()
	if err := b.proc.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	<-b.exited
}

// until waits up to d for a message.
func (b *upBox) until(what string, d time.Duration, match func(fleet.Msg) bool) fleet.Msg {
	b.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-b.col.ch:
			if match(m) {
				return m
			}
		case <-deadline:
			b.t.Fatalf("no %s within %s; agent log:\n%s", what, d, tail(b.logs.String(), 40))
		}
	}
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// online waits for the retained status to say online at version, from
// an agent started after since (the stream also carries the births of
// trial candidates and of agents that were stopped since).
func (b *upBox) online(version string, since time.Time) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		p, _ := b.broker.Retained("camgate/cg-e2e/status")
		var st uplink.Status
		if json.Unmarshal(p, &st) == nil && st.State == uplink.StateOnline && st.Version == version &&
			st.StartedAt != nil && st.StartedAt.After(since) {
			return
		}
		last = string(p)
		time.Sleep(20 * time.Millisecond) // polling the broker's retained message
	}
	b.t.Fatalf("retained status %s, want online %s started after %s; agent log:\n%s", last, version, since.Format(time.RFC3339Nano), tail(b.logs.String(), 40))
}

// event matches an event of typ and returns its detail through into.
func event(typ string, into *map[string]any) func(fleet.Msg) bool {
	return func(m fleet.Msg) bool {
		var ev struct {
			Type   string         `json:"type"`
			Detail map[string]any `json:"detail"`
		}
		if m.Kind != uplink.KindEvents || json.Unmarshal(m.Payload, &ev) != nil || ev.Type != typ {
			return false
		}
		if into != nil {
			*into = ev.Detail
		}
		return true
	}
}

// serve puts a release on the file server and returns agent.update's args.
func (b *upBox) serve(name, path, version string) update.Request {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.t.Fatal(err)
	}
	return update.Request{URL: b.srv.Put(name, raw), SHA256: updatetest.SHA256(raw), Signature: b.key.Sign(raw), Version: version}
}

func (b *upBox) update(req update.Request) uplink.Reply {
	b.t.Helper()
	args, _ := json.Marshal(req)
	return fleetCmd(b.t, b.fleet, "agent.update", string(args))
}

func (b *upBox) accepted(req update.Request) {
	b.t.Helper()
	if r := b.update(req); !r.OK || !strings.Contains(string(r.Result), `"accepted":true`) {
		b.t.Fatalf("agent.update %s: %s %+v", req.Version, r.Result, r.Error)
	}
}

// servesRTSP reads the demo path.
func (b *upBox) servesRTSP() {
	b.t.Helper()
	rd, err := testcam.Read(b.t, "rtsp://"+b.rtsp+"/demo", false)
	if err != nil {
		b.t.Fatalf("RTSP read: %v; agent log:\n%s", err, tail(b.logs.String(), 30))
	}
	rd.WaitPackets(b.t, 10, 5*time.Second)
	rd.Close()
}

func (b *upBox) state() update.State {
	st, err := update.NewLayout(b.dir).LoadState()
	if err != nil {
		b.t.Fatal(err)
	}
	return st
}

// TestUpdate drives agent.update over MQTT against the real agent binary
// as a child process: refusals, rollbacks of a candidate that exits and of
// one that never becomes healthy, a conflict, a no-op, the commit of a
// good release with a hand-over that keeps the PID, and SIGKILL at each
// step leaving a box that starts with a consistently recorded version.
func TestUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs agent binaries")
	}
	rel := buildReleases(t)

	t.Run("end to end", func(t *testing.T) {
		b := newUpBox(t, rel)
		b.start()
		b.online("v1", b.startedAt)

		// A signature by another key: refused, nothing left on disk.
		bad := b.serve("v2-badsig", rel.v2, "v2")
		bad.Signature = updatetest.NewKey(t).Sign([]byte("whatever"))
		b.accepted(bad)
		var d map[string]any
		b.until("update.failed (signature)", 60*time.Second, event(uplink.EventUpdateFailed, &d))
		if d["check"] != "signature" {
			t.Fatalf("refusal %v, want check signature", d)
		}
		if e, _ := os.ReadDir(filepath.Join(b.dir, "bin")); len(e) > 0 {
			t.Fatalf("refused update left %v", e)
		}
		// A truncated download (the file ends early): the SHA-256 check.
		good := b.serve("v2", rel.v2, "v2")
		raw, _ := os.ReadFile(rel.v2)
		trunc := good
		trunc.URL = b.srv.Put("v2-trunc", raw[:len(raw)/2])
		b.accepted(trunc)
		b.until("update.failed (sha256)", 60*time.Second, event(uplink.EventUpdateFailed, &d))
		if d["check"] != "sha256" {
			t.Fatalf("refusal %v, want check sha256", d)
		}

		// No-op and conflict (over the local API and MQTT alike).
		noop := good
		noop.Version = "v1"
		body, _ := json.Marshal(noop)
		resp, err := http.Post("http://"+b.api+"/v1/agent/update", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var rep update.Reply
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !rep.Noop {
			t.Fatalf("POST /v1/agent/update to the running version: %s %+v", resp.Status, rep)
		}

		// A candidate that exits 1 at start: rolled back.
		b.accepted(b.serve("exit1", rel.exit1, "v3"))
		start := time.Now()
		b.until("update.rolled_back (exit1)", 90*time.Second, event(uplink.EventUpdateRolledBack, &d))
		if r, _ := d["reason"].(string); !strings.Contains(r, "exit status 1") || !strings.Contains(r, "this build is broken") {
			t.Fatalf("rollback reason %q: want the exit status and the last output", r)
		}
		b.online("v1", start)
		b.servesRTSP()
		t.Logf("exit1 candidate rolled back, v1 serving again %s after the command", time.Since(start).Round(time.Millisecond))

		// One that never becomes healthy: rolled back at the trial timeout.
		start = time.Now()
		b.accepted(b.serve("hang", rel.hang, "v4"))
		b.until("update.rolled_back (hang)", 90*time.Second+b.trialTO, event(uplink.EventUpdateRolledBack, &d))
		if r, _ := d["reason"].(string); !strings.Contains(r, "not healthy within") {
			t.Fatalf("rollback reason %q", r)
		}
		b.online("v1", start)
		b.servesRTSP()
		if st := b.state(); st.Phase != update.PhaseIdle || st.Current != nil || st.Candidate != nil {
			t.Fatalf("state after rollbacks %+v", st)
		}

		// The good one, first stalled mid-download: a second update is a
		// conflict; the broken transfer resumes with the next request.
		b.srv.Stall("v2")
		b.accepted(good)
		b.until("download progress", 30*time.Second, event(uplink.EventUpdateProgress, nil))
		if r := b.update(good); r.OK || r.Error == nil || r.Error.Code != uplink.CodeConflict {
			t.Fatalf("second update while one runs: %+v", r)
		}
		b.srv.Release("v2")
		b.until("update.failed (download)", 30*time.Second, event(uplink.EventUpdateFailed, &d))
		if d["check"] != "download" {
			t.Fatalf("broken transfer: %v", d)
		}
		pid := b.proc.Process.Pid
		start = time.Now()
		b.accepted(good)
		b.until("update.committed", 90*time.Second, event(uplink.EventUpdateCommitted, &d))
		if d["version"] != "v2" || d["from"] != "v1" {
			t.Fatalf("committed %v", d)
		}
		t.Logf("v2 downloaded, checked, tried, committed and handed over %s after the command", time.Since(start).Round(time.Millisecond))
		b.online("v2", start)
		if r := b.srv.Ranges(); r[len(r)-1] == "" {
			t.Errorf("the download after the broken transfer did not resume: %q", r)
		}
		select {
		case <-b.exited:
			t.Fatal("the agent process exited at the hand-over")
		default:
		}
		if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); !strings.HasPrefix(exe, filepath.Join(b.dir, "bin")) {
			t.Fatalf("PID %d runs %s, want the committed binary under the data directory", pid, exe)
		}
		b.servesRTSP()
		st := b.state()
		if st.Current == nil || st.Current.Version != "v2" || st.Previous != nil || st.Installed == "" {
			t.Fatalf("state after commit %+v", st)
		}
		// Status and health say v2; the installed v1 redirects to v2.
		b.kill()
		b.start()
		b.online("v2", b.startedAt)
		if r := b.update(good); !r.OK || !strings.Contains(string(r.Result), `"noop":true`) {
			t.Fatalf("update to the running v2: %s %+v", r.Result, r.Error)
		}
	})

	t.Run("SIGKILL during download", func(t *testing.T) {
		b := newUpBox(t, rel)
		b.start()
		b.online("v1", b.startedAt)
		b.srv.Stall("v2")
		b.accepted(b.serve("v2", rel.v2, "v2"))
		b.until("download progress", 30*time.Second, event(uplink.EventUpdateProgress, nil))
		b.kill()
		b.start()
		b.online("v1", b.startedAt)
		b.servesRTSP()
		if st := b.state(); st.Phase != update.PhaseIdle || st.Current != nil {
			t.Fatalf("state %+v", st)
		}
	})

	t.Run("SIGKILL during the trial", func(t *testing.T) {
		b := newUpBox(t, rel)
		b.start()
		b.online("v1", b.startedAt)
		b.accepted(b.serve("hang", rel.hang, "v4"))
		deadline := time.Now().Add(60 * time.Second)
		var child int
		for child == 0 {
			if st := b.state(); st.Phase == update.PhaseTrial {
				child = childOf(b.proc.Process.Pid)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no trial child; log:\n%s", tail(b.logs.String(), 30))
			}
			time.Sleep(50 * time.Millisecond) // polling another process's state
		}
		b.kill()
		gone := time.Now().Add(10 * time.Second)
		for syscall.Kill(child, 0) == nil {
			if time.Now().After(gone) {
				t.Fatalf("trial child %d outlived the killed agent", child)
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.start()
		var d map[string]any
		b.until("update.rolled_back after the kill", 30*time.Second, event(uplink.EventUpdateRolledBack, &d))
		if r, _ := d["reason"].(string); !strings.Contains(r, "supervising the trial stopped") {
			t.Fatalf("reason %q", r)
		}
		b.online("v1", b.startedAt)
		b.servesRTSP()
	})

	t.Run("SIGKILL at the commit", func(t *testing.T) {
		b := newUpBox(t, rel)
		b.start()
		b.online("v1", b.startedAt)
		b.accepted(b.serve("v2", rel.v2, "v2"))
		// Kill as soon as the commit is recorded: the candidate may still
		// be stopping, the hand-over not done.
		deadline := time.Now().Add(90 * time.Second)
		for {
			if st := b.state(); st.Current != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never committed; log:\n%s", tail(b.logs.String(), 30))
			}
			time.Sleep(5 * time.Millisecond) // polling another process's state
		}
		b.kill()
		b.start()
		want := b.state().Current.Version
		b.online(want, b.startedAt)
		b.servesRTSP()
		if want != "v2" {
			t.Fatalf("recorded %s after the commit", want)
		}
	})
}

// childOf is the first child process of pid (Linux /proc), 0 if none.
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		// Threads other than the main one may have forked it.
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, tk := range tasks {
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name())); len(c) > 0 {
				b = c
				break
			}
		}
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		n, _ := strconv.Atoi(f[0])
		return n
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, tk := range tasks {
		if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, tk.Name())); len(c) > 0 {
			n, _ := strconv.Atoi(strings.Fields(string(c))[0])
			return n
		}
	}
	return 0
}
