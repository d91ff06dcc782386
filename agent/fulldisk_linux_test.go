package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
	"github.com/camgate/camgate/uplink/mqtttest"
)

const envFullDisk = "CGTEST_FULLDISK_CHILD"

// TestFullDiskKeepsServing fills the data directory's file system under a
// running agent: a 4 MiB tmpfs, mounted in a private mount namespace of a
// child process (this test binary again, running TestFullDiskChild), so
// nothing is mounted on the host even if the test dies.
func TestFullDiskKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process for a minute at most")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs, even in a private mount namespace, needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envFullDisk+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFullDiskChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "full disk:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// TestFullDiskChild is the child's side (see above): the agent, a broker
// behind a cuttable proxy and a fleet subscriber, all in this process.
// With the link cut and the disk full, appends fail while RTSP keeps
// serving; once space and link return, the fleet sees exactly as many
// seq gaps as the agent counted and as its outbox.dropped events report.
func TestFullDiskChild(t *testing.T) {
	if os.Getenv(envFullDisk) == "" {
		t.Skip("the child of TestFullDiskKeepsServing")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })

	b := mqtttest.NewBroker(t, mqtttest.BrokerOptions{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	f := dialFleetT(t, b.URL())
	col := collect(t, f, "cg-e2e")
	file, rtsp, apiAddr := fleetConfig(t, dir, proxy.URL(), "")
	logs := &testlog.Buffer{}
	_, stop := startAgent(t, file, logs)
	col.until(t, "birth", isStatus(uplink.StateOnline, ""))
	col.until(t, "first health", func(m fleet.Msg) bool { return m.Kind == uplink.KindHealth })

	proxy.Cut()
	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	failed := waitMetric(t, apiAddr, "camgate_outbox_append_failed_total", 3, logs)

	// Streaming does not care.
	rd, err := testcam.Read(t, "rtsp://"+rtsp+"/demo", false)
	if err != nil {
		t.Fatalf("RTSP with a full disk: %v", err)
	}
	rd.WaitPackets(t, 25, 5*time.Second)
	rd.Close()
	if more := waitMetric(t, apiAddr, "camgate_outbox_append_failed_total", failed+1, logs); more <= failed {
		t.Fatal("appends stopped failing with the disk still full")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	var sum, total, noticeSeq uint64
	for sum == 0 || sum != total {
		m := col.until(t, "outbox.dropped", isEvent(uplink.EventOutboxDropped))
		var ev struct {
			Detail uplink.OutboxDropped `json:"detail"`
		}
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		sum += ev.Detail.Failed
		noticeSeq = m.Seq
		total = metricValue(t, apiAddr, "camgate_outbox_append_failed_total")
		if ev.Detail.Evicted != 0 || !strings.Contains(ev.Detail.Reason, "no space left") {
			t.Fatalf("notice %+v", ev.Detail)
		}
	}
	// Everything below the last notice's seq has been published by now
	// (the drain goes in seq order): what the fleet lacks are the gaps.
	seen := map[uint64]bool{}
	for _, s := range col.seqs {
		seen[s] = true
	}
	var gaps uint64
	for s := uint64(1); s < noticeSeq; s++ {
		if !seen[s] {
			gaps++
		}
	}
	if gaps != total || sum != total {
		t.Fatalf("fleet gaps %d, notices %d, agent counted %d", gaps, sum, total)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The failed writes did not damage the file.
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{FullCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r := st.Recovered(); r != nil {
		t.Fatalf("the file was damaged: %+v", r)
	}
	t.Logf("full disk: %d appends failed, %d seq gaps at the fleet, %d reported by outbox.dropped, RTSP served throughout", total, gaps, sum)
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// waitMetric polls /metrics until name reaches at least min.
func waitMetric(t *testing.T, apiAddr, name string, min uint64, logs *testlog.Buffer) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v := metricValue(t, apiAddr, name); v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %d; agent log:\n%s", name, min, logs.String())
		}
		time.Sleep(100 * time.Millisecond) // polling the agent's API
	}
}

func metricValue(t *testing.T, apiAddr, name string) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return uint64(n)
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
