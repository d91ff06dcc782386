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

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/uplink"
)

// startMosquitto runs Debian's mosquitto on a free loopback port with
// anonymous access and no persistence, stopped by PID at cleanup.
func startMosquitto(t testing.TB, dir string) (host string, port int) {
	t.Helper()
	need(t, "mosquitto", "mosquitto_sub", "mosquitto_pub", "mosquitto_rr")
	port, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := StartProc(dir, "mosquitto", "mosquitto", "-c", conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := WaitTCP(addr, 10*time.Second, p.Done()); err != nil {
		t.Fatalf("mosquitto: %v\n%s", err, p.Tail(20))
	}
	return "127.0.0.1", port
}

// sub1 waits for one message on topic with mosquitto_sub (retained ones
// count) and returns its payload.
func sub1(t *testing.T, port int, topic string) string {
	t.Helper()
	out, errOut, err := run(20*time.Second, "mosquitto_sub", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-t", topic, "-C", "1", "-W", "15", "-q", "1")
	if err != nil {
		t.Fatalf("mosquitto_sub %s: %v: %s", topic, err, errOut)
	}
	return strings.TrimSpace(out)
}

// TestMQTTWithMosquitto: the agent against Debian's mosquitto, with the
// mosquitto clients as the fleet side (status, health, a command and its
// reply) and `camgate fleet` against the same broker.
func TestMQTTWithMosquitto(t *testing.T) {
	dir := outDir(t)
	_, port := startMosquitto(t, dir)
	broker := "tcp://127.0.0.1:" + strconv.Itoa(port)
	a := startAgent(t, AgentOptions{Dir: dir, Sections: map[string]map[string]any{
		"uplink": {"broker": broker, "healthInterval": "1s"},
	}})

	var st struct {
		State   string `json:"state"`
		Version string `json:"version"`
		BootID  string `json:"bootId"`
	}
	// Retained birth: a subscriber arriving later still gets it.
	if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/status")), &st); err != nil || st.State != "online" || st.BootID == "" {
		t.Fatalf("birth: %+v %v", st, err)
	}
	var health struct {
		Seq   uint64 `json:"seq"`
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		Paths []struct {
			Name string `json:"name"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/health")), &health); err != nil || health.Seq == 0 || health.Agent.ID != "cg-interop" || len(health.Paths) == 0 {
		t.Fatalf("health: %+v %v", health, err)
	}

	// A command and its reply: mosquitto_rr subscribes to the reply topic,
	// then publishes the request.
	out, errOut, err := run(20*time.Second, "mosquitto_rr", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-t", "camgate/cg-interop/cmd/paths.add", "-e", "camgate/cg-interop/reply/rr-1", "-W", "15",
		"-m", `{"id":"rr-1","args":{"name":"fromfleet","conf":{"source":"demo"}}}`)
	if err != nil {
		t.Fatalf("mosquitto_rr: %v: %s", err, errOut)
	}
	var reply struct {
		ID  string `json:"id"`
		Cmd string `json:"cmd"`
		OK  bool   `json:"ok"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &reply); err != nil || !reply.OK || reply.ID != "rr-1" || reply.Cmd != "paths.add" {
		t.Fatalf("reply %q: %v", out, err)
	}
	if err := waitReadable(a.URL("fromfleet", ""), 20*time.Second); err != nil {
		t.Fatal(err)
	}

	// camgate fleet against the same broker.
	bin := AgentBin(t)
	out, errOut, err = run(20*time.Second, bin, "fleet", "-broker", broker, "ls", "-listen", "1500ms")
	if err != nil || !strings.Contains(out, "cg-interop") || !strings.Contains(out, "online") {
		t.Fatalf("camgate fleet ls: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = run(20*time.Second, bin, "fleet", "-broker", broker, "cmd", "cg-interop", "paths.list")
	if err != nil || !strings.Contains(out, `"fromfleet"`) || !strings.Contains(out, `"origin": "fleet"`) {
		t.Fatalf("camgate fleet cmd paths.list: %v\n%s%s", err, out, errOut)
	}
	out, _, err = run(20*time.Second, bin, "fleet", "-broker", broker, "cmd", "cg-interop", "paths.remove", `{"name":"demo"}`)
	if err == nil || !strings.Contains(out, "read_only") {
		t.Fatalf("camgate fleet cmd paths.remove demo: want exit 1 and read_only, got %v\n%s", err, out)
	}

	// A clean stop leaves the retained shutdown status.
	stopAgent(t, a)
	if err := json.Unmarshal([]byte(sub1(t, port, "camgate/cg-interop/status")), &st); err != nil || st.State != "offline" {
		t.Fatalf("status after stop: %+v %v", st, err)
	}
}

// storeOutbox adapts the store to uplink.Outbox as the agent does.
type storeOutbox struct{ s *store.Store }

func (o storeOutbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	msgs, err := o.s.OutboxAfter(after, max)
	out := make([]uplink.Message, len(msgs))
	for i, m := range msgs {
		out[i] = uplink.Message{Seq: m.Seq, Kind: m.Kind, Payload: m.Payload}
	}
	return out, err
}
func (o storeOutbox) Acked(seqs ...uint64) error { return o.s.DeleteOutbox(seqs...) }
func (o storeOutbox) Appended() <-chan struct{}  { return o.s.OutboxSignal() }

// BenchmarkDrain10kToMosquitto measures the time from connecting to an
// empty outbox with 10 000 health-sized messages queued, against mosquitto
// on loopback (bbolt fsync on every acknowledged batch included).
func BenchmarkDrain10kToMosquitto(b *testing.B) {
	dir := b.TempDir()
	_, port := startMosquitto(b, dir)
	payload := []byte(strings.Repeat("h", 1200))
	for i := range b.N {
		b.StopTimer() // queueing is not measured
		st, err := store.Open(filepath.Join(dir, fmt.Sprintf("db%d", i), store.FileName), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for range 10000 {
			if _, _, err := st.AppendOutbox(uplink.KindHealth, func(uint64) ([]byte, error) { return payload, nil }); err != nil {
				b.Fatal(err)
			}
		}
		c, err := uplink.New(uplink.Options{Broker: "tcp://127.0.0.1:" + strconv.Itoa(port), AgentID: fmt.Sprintf("cg-bench-%d", i),
			Outbox: storeOutbox{st}, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		b.StartTimer()
		go func() { done <- c.Run(ctx) }()
		for {
			s, _ := st.OutboxStats()
			if s.Depth == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling the depth; the drain has no completion event
		}
		b.StopTimer()
		el := time.Since(start)
		cancel()
		<-done
		st.Close()
		b.ReportMetric(el.Seconds(), "s/10k")
		b.ReportMetric(10000/el.Seconds(), "msgs/s")
	}
}
