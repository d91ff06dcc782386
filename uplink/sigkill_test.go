package uplink_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/mqtttest"
)

// child is a running testdata/fakeagent process.
type child struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	last uint64
	seen chan uint64 // every "appended SEQ"
	done chan struct{}
}

func startChild(t *testing.T, bin, data, broker string) *child {
	t.Helper()
	cmd := exec.Command(bin, "-data", data, "-broker", broker, "-id", "cg-kill", "-every", "10ms")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, seen: make(chan uint64, 100000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "appended "); ok {
				n, _ := strconv.ParseUint(s, 10, 64)
				c.mu.Lock()
				c.last = n
				c.mu.Unlock()
				c.seen <- n
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by its pid
			_ = cmd.Wait()
		}
	})
	return c
}

// waitAppended waits until the child reports seq n or more.
func (c *child) waitAppended(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-c.seen:
			if s >= n {
				return
			}
		case <-deadline:
			t.Fatalf("child did not reach seq %d", n)
		}
	}
}

func (c *child) lastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func buildFakeAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakeagent")
	build := exec.Command("go", "build", "-o", bin, "./testdata/fakeagent")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build fakeagent: %v", err)
	}
	return bin
}

// TestStoreAndForwardSurvivesSIGKILL: an agent process appends while its
// link is cut, is killed with SIGKILL, restarts (still cut) and appends
// more; when the link returns the fleet gets every seq, in order.
func TestStoreAndForwardSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a child process")
	}
	bin := buildFakeAgent(t)
	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	p := mqtttest.NewProxy(t, b.Addr())
	f := dialFleet(t, b.URL())
	ch := watch(t, f, "cg-kill")                     // statuses
	hc := watch(t, dialFleet(t, b.URL()), "cg-kill") // health, read only at the end
	data := t.TempDir()

	first := startChild(t, bin, data, p.URL())
	waitStatus(t, ch, uplink.StateOnline, "")
	first.waitAppended(t, 20)
	p.Cut()
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonLost)
	first.waitAppended(t, first.lastSeq()+30) // appended while cut
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	_ = first.cmd.Wait()
	killedAt := first.lastSeq()

	second := startChild(t, bin, data, p.URL())
	second.waitAppended(t, killedAt+30) // a restart that remembers its seq
	p.Restore()
	waitStatus(t, ch, uplink.StateOnline, "")
	target := second.lastSeq() + 10
	second.waitAppended(t, target)

	var got []uint64
	deadline := time.After(30 * time.Second)
	for len(got) == 0 || maxOf(got) < target {
		select {
		case m := <-hc:
			if m.Kind == uplink.KindHealth {
				got = append(got, m.Seq)
			}
		case <-deadline:
			t.Fatalf("fleet saw up to %d, want %d", maxOf(got), target)
		}
	}
	// Stop the child cleanly; then check the prefix 1..target.
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	waitStatus(t, ch, uplink.StateOffline, uplink.ReasonShutdown)
	var prefix []uint64
	for _, s := range got {
		if s <= target {
			prefix = append(prefix, s)
		}
	}
	checkSeqs(t, prefix, target)
	t.Logf("killed at seq %d, restarted, drained through %d", killedAt, target)
}

func maxOf(s []uint64) uint64 {
	var m uint64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
