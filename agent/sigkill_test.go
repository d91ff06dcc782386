package agent

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// agentProc is the test binary running as `camgate run` (see TestMain).
type agentProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *testlog.Buffer
}

func startAgentProc(t *testing.T, file string) *agentProc {
	t.Helper()
	p := &agentProc{cmd: exec.Command(os.Args[0], "run", "-c", file), exited: make(chan struct{}), logs: &testlog.Buffer{}}
	p.cmd.Env = append(os.Environ(), "CGTEST_AS_AGENT=1")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // our child, by its pid
		<-p.exited
	})
	return p
}

// outboxDepth polls the child's local API until its outbox holds at least
// min messages (the child's state is only visible through its API).
func outboxDepth(t *testing.T, apiAddr string, min int, p *agentProc) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + apiAddr + "/v1/health")
		if err == nil {
			var h uplink.Health
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Uplink.OutboxDepth >= min {
				return h.Uplink.OutboxDepth
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox never reached %d messages; agent log:\n%s", min, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling another process's API
	}
}

// TestStoreAndForwardAcrossSIGKILL runs the real agent as a child process
// behind a TCP proxy: the link is cut, health and events pile up in the
// outbox, the agent is SIGKILLed and restarted while still cut, then the
// link returns. The fleet sees every seq of both runs, in order.
func TestStoreAndForwardAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the agent as a child process")
	}
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	file, _, apiAddr := fleetConfig(t, t.TempDir(), proxy.URL(), "")

	first := startAgentProc(t, file)
	col.until(t, "birth", isStatus(uplink.StateOnline, ""))
	col.until(t, "first health", func(m fleet.Msg) bool { return m.Kind == uplink.KindHealth })
	proxy.Cut()
	col.until(t, "last will", isStatus(uplink.StateOffline, uplink.ReasonLost))
	depth := outboxDepth(t, apiAddr, 4, first)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	second := startAgentProc(t, file)
	outboxDepth(t, apiAddr, depth+3, second) // the queue survived and grows on
	proxy.Restore()
	col.until(t, "second birth", isStatus(uplink.StateOnline, ""))
	col.until(t, "health of boot 2", func(m fleet.Msg) bool {
		return m.Kind == uplink.KindHealth && json.Valid(m.Payload) && containsBoot(m.Payload, 2)
	})
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	col.until(t, "shutdown status", isStatus(uplink.StateOffline, uplink.ReasonShutdown))
	<-second.exited
	noGap(t, col.seqs)
	t.Logf("%d seqs across a SIGKILL, %d queued when killed", len(col.seqs), depth)
}

func containsBoot(p []byte, boot uint64) bool {
	var h uplink.Health
	return json.Unmarshal(p, &h) == nil && h.Agent.BootCount == boot
}
