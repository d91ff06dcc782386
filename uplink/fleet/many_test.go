package fleet_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// TestSnapshotAndCommandMany: the inventory from retained statuses (one
// agent offline), selection by labels, and one command to many agents
// with its results: ok, an error code, no reply.
func TestSnapshotAndCommandMany(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	s := startSims(t, b.URL(), 6, nil)
	s.stop(5)
	c := dial(t, b)
	ctx := tctx(t)

	agents, err := c.Snapshot(ctx, fleet.SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 6 {
		t.Fatalf("%d agents in the snapshot, want 6: %+v", len(agents), agents)
	}
	for i, a := range agents {
		if !a.HasStatus || a.Status.Labels["line"] == "" || a.Online() == (i == 5) {
			t.Fatalf("agent %d: %+v", i, a)
		}
	}
	sel, _ := fleet.ParseSelector("site=plant-0")
	var ids []string
	for _, a := range (fleet.Target{Selector: sel}).Select(agents) {
		ids = append(ids, a.ID)
	}
	if !slices.Equal(ids, []string{"sim-00", "sim-02", "sim-04"}) {
		t.Fatalf("site=plant-0: %v", ids)
	}

	all := []string{"sim-00", "sim-01", "sim-02", "sim-03", "sim-04", "sim-05", "sim-none"}
	online := map[string]bool{}
	for _, a := range agents {
		online[a.ID] = a.Online()
	}
	var lastProgress [2]int
	res, err := c.CommandMany(ctx, all, "ping", nil, fleet.ManyOptions{
		Timeout: 2 * time.Second, Online: func(id string) bool { return online[id] },
		Progress: func(n, total int) { lastProgress = [2]int{n, total} },
	})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{}
	for _, r := range res {
		outcomes[r.ID] = r.Outcome()
	}
	want := map[string]string{"sim-00": "ok", "sim-01": "ok", "sim-02": "ok", "sim-03": "ok", "sim-04": "ok",
		"sim-05": "no reply (offline)", "sim-none": "no reply (offline)"}
	if !maps.Equal(outcomes, want) || lastProgress != [2]int{5, 7} {
		t.Fatalf("outcomes %v progress %v", outcomes, lastProgress)
	}
	var pong struct {
		Pong bool `json:"pong"`
	}
	if err := json.Unmarshal(res[0].Reply.Result, &pong); err != nil || !pong.Pong {
		t.Fatalf("ping result %s", res[0].Reply.Result)
	}

	res, err = c.CommandMany(ctx, all[:2], "nope", nil, fleet.ManyOptions{Timeout: 5 * time.Second})
	if err != nil || res[0].Outcome() != string(uplink.CodeUnknownCommand) || res[1].OK() {
		t.Fatalf("unknown command: %+v %v", res, err)
	}
	// The offline agent's session kept the ping; it expired meanwhile.
	time.Sleep(time.Second) // let the 2s expiry pass (the command carries a time, not an event)
	s.start(t, 5)
	// The in-process broker (mochi) now and then delivers nothing more to
	// a resumed session that had a message queued (about one run in ten
	// under -race; the agent's re-subscribe meets 0x91 "packet identifier
	// in use" in those runs too). A fleet engineer would send again, and
	// so does this test. Commands queued for an offline agent are tested
	// against mosquitto, which loses none, in internal/interop.
	for attempt := 1; ; attempt++ {
		res, err = c.CommandMany(ctx, []string{"sim-05"}, "ping", nil, fleet.ManyOptions{Timeout: 5 * time.Second})
		if err == nil && res[0].OK() {
			break
		}
		if attempt == 3 {
			t.Fatalf("ping after the restart, %d attempts: %+v %v", attempt, res, err)
		}
	}
}

// TestDesiredStateFromTheFleet: a file with labels as YAML numbers,
// written to a selection with bumped versions, converges, also on an agent
// that was offline when it was written; Diff shows what a new file
// changes.
func TestDesiredStateFromTheFleet(t *testing.T) {
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	s := startSims(t, b.URL(), 4, nil)
	s.stop(3)
	c := dial(t, b)
	ctx := tctx(t)
	doc, err := fleet.ParseDesiredFile([]byte("paths:\n  cam1: {source: rtsp://u:secret@10.0.0.1/x}\nlabels:\n  zone: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := doc["labels"].(map[string]any); l["zone"] != "7" {
		t.Fatalf("labels %v", l)
	}
	for _, bad := range []string{"version: 3\n", "auth: {}\n", "labels: {a: 'b c'}\n", "paths: [1]\n", ""} {
		if _, err := fleet.ParseDesiredFile([]byte(bad)); err == nil {
			t.Errorf("ParseDesiredFile accepted %q", bad)
		}
	}

	agents, err := c.Snapshot(ctx, fleet.SnapshotOptions{State: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, a := range (fleet.Target{All: true}).Select(agents) {
		v := fleet.NextVersion(a)
		if v != 1 {
			t.Fatalf("first version %d", v)
		}
		if err := c.PutDesired(ctx, a.ID, v, doc); err != nil {
			t.Fatal(err)
		}
		want[a.ID] = v
	}
	// The offline agent converges when it comes back.
	s.start(t, 3)
	got, err := c.WaitReported(ctx, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range got {
		if r.Version != 1 || !r.OK {
			t.Fatalf("%s reported %+v", id, r)
		}
	}
	agents, err = c.Snapshot(ctx, fleet.SnapshotOptions{State: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		cv := fleet.ConvergenceOf(a)
		if !cv.Converged() || a.Status.Labels["zone"] != "7" || fleet.NextVersion(a) != 2 {
			t.Fatalf("%s: %+v state %s labels %v", a.ID, cv, cv.State(), a.Status.Labels)
		}
	}

	next, _ := fleet.ParseDesiredFile([]byte("paths:\n  cam1: {source: rtsp://u:secret@10.0.0.2/x}\n  cam2: {source: demo}\n"))
	diff := fleet.Diff(fleet.DocOf(agents[0].Desired), next)
	var lines []string
	for _, ch := range diff {
		lines = append(lines, ch.String())
	}
	text := strings.Join(lines, "\n")
	if len(diff) != 3 || !strings.Contains(text, "~ paths.cam1.source") || !strings.Contains(text, `+ paths.cam2.source: "demo"`) ||
		!strings.Contains(text, "- labels.zone") || strings.Contains(text, "secret") {
		t.Fatalf("diff:\n%s", text)
	}
	if d := fleet.Diff(fleet.DocOf(agents[0].Desired), doc); len(d) != 0 {
		t.Fatalf("diff against the same document: %v", d)
	}
}
