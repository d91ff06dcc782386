//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/cmd/fleetsim/sim"
	"github.com/camgate/camgate/internal/cmd/fleetsim/sim/simtest"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

// TestSharedSubscriptionsOnMosquitto: two fleet consumers in one share
// group ($share/health/camgate/+/health ...) split the health of simulated
// agents on mosquitto: both get a part, none gets a message the other got,
// and together they get what a plain subscriber gets.
func TestSharedSubscriptionsOnMosquitto(t *testing.T) {
	_, port := startMosquitto(t, outDir(t))
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := func(group string) <-chan fleet.Msg {
		c, err := fleet.Dial(ctx, fleet.Options{Broker: broker, ShareGroup: group})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		ch, stop, err := c.Subscribe(ctx, "+", 100000)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		return ch
	}
	shared := []<-chan fleet.Msg{sub("health"), sub("health")}
	plain := sub("")
	const agents = 6
	simtest.Start(t, broker, agents, func(_ int, o *sim.Options) { o.HealthInterval = 100 * time.Millisecond })

	// Read until each shared consumer has 40 health messages, then drain
	// what the plain subscriber saw up to the same seqs.
	got := [2]map[string]bool{{}, {}}
	deadline := time.After(30 * time.Second)
	for len(got[0]) < 40 || len(got[1]) < 40 {
		select {
		case m := <-shared[0]:
			take(t, got[:], 0, m)
		case m := <-shared[1]:
			take(t, got[:], 1, m)
		case <-deadline:
			t.Fatalf("after 30s the shared consumers have %d and %d health messages", len(got[0]), len(got[1]))
		}
	}
	union := map[string]bool{}
	for i := range got {
		for k := range got[i] {
			union[k] = true
		}
	}
	all := map[string]bool{}
	drain := time.After(5 * time.Second)
	for missing := len(union); missing > 0; {
		select {
		case m := <-plain:
			if m.Kind != uplink.KindHealth {
				continue
			}
			k := fmt.Sprintf("%s/%d", m.AgentID, m.Seq)
			if union[k] && !all[k] {
				missing--
			}
			all[k] = true
		case <-drain:
			t.Fatalf("the plain subscriber lacks %d of the messages the shared ones got", missing)
		}
	}
	t.Logf("shared consumers: %d and %d health messages, no message twice", len(got[0]), len(got[1]))
}

func take(t *testing.T, got []map[string]bool, i int, m fleet.Msg) {
	t.Helper()
	if m.Kind != uplink.KindHealth {
		return
	}
	k := fmt.Sprintf("%s/%d", m.AgentID, m.Seq)
	if got[1-i][k] {
		t.Fatalf("health %s went to both shared consumers", k)
	}
	got[i][k] = true
}

// TestDesiredStateOnMosquitto: `camgate fleet desired set` writes a
// desired state for the real agent on mosquitto and waits for its report:
// the path is served, the labels are in the retained status, the report
// is retained.
func TestDesiredStateOnMosquitto(t *testing.T) {
	dir := outDir(t)
	_, port := startMosquitto(t, dir)
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	a := startAgent(t, AgentOptions{Dir: dir, Sections: map[string]map[string]any{
		"uplink": {"broker": broker, "healthInterval": "1s"},
		"agent":  {"labels": map[string]string{"site": "plant-3"}},
	}})
	var st uplink.Status
	if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/status")), &st); err != nil || st.Labels["site"] != "plant-3" {
		t.Fatalf("birth %+v %v", st, err)
	}
	file := filepath.Join(dir, "desired.yml")
	if err := os.WriteFile(file, []byte("paths:\n  fromdesired: {source: demo}\nlabels: {line: 2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := AgentBin(t)
	out, errOut, err := run(30*time.Second, bin, "fleet", "-broker", broker, "desired", "set", "-l", "site=plant-3", file, "-wait", "20s")
	if err != nil || !strings.Contains(out, "cg-interop  converged  1") {
		t.Fatalf("camgate fleet desired set: %v\n%s%s", err, out, errOut)
	}
	if err := waitReadable(a.URL("fromdesired", ""), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var rep uplink.Reported
	if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/state/reported")), &rep); err != nil || rep.Version != 1 || !rep.OK {
		t.Fatalf("retained report %+v %v", rep, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/status")), &st); err == nil && st.Labels["line"] == "2" && st.Labels["site"] == "plant-3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status labels %v", st.Labels)
		}
		time.Sleep(100 * time.Millisecond) // a retained message of another process
	}
	out, errOut, err = run(30*time.Second, bin, "fleet", "-broker", broker, "ls", "-l", "line=2")
	if err != nil || !strings.Contains(out, "cg-interop") {
		t.Fatalf("camgate fleet ls -l line=2: %v\n%s%s", err, out, errOut)
	}
	stopAgent(t, a)
}
