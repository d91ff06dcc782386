//go:build unix

package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kballard/go-shellquote"

	"github.com/camgate/camgate/internal/testcam"
	"github.com/camgate/camgate/internal/testlog"
)

type logEntry struct {
	Message, Output, Path, Hook, Reason string
	Pid                                 int
}

func logEntries(logs *testlog.Buffer) []logEntry {
	var out []logEntry
	for _, line := range strings.Split(logs.String(), "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func waitLog(t *testing.T, logs *testlog.Buffer, match func(logEntry) bool, what string) logEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range logEntries(logs) {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log within 10s:\n%s", what, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone tells whether pid has exited (a zombie waiting for its
// reaper counts as gone).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	s := string(b)
	st := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(st) > 0 && (st[0] == "Z" || st[0] == "X")
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still running", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A reader of a runOnDemand path waits while the command starts and
// publishes, then gets its packets; runOnDemandCloseAfter after the reader
// left, the command and its child are gone.
func TestRunOnDemandPublishesForReader(t *testing.T) {
	line := shellquote.Join(os.Args[0]) + " cgtest-publish rtsp://127.0.0.1:$RTSP_PORT/$MTX_PATH"
	file, addr := testConfig(t, t.TempDir(), fmt.Sprintf(`pathDefaults:
  runOnDemandCloseAfter: 300ms
paths:
  webcam:
    source: publisher
    runOnDemand: %q
`, line))
	logs := &testlog.Buffer{}
	startAgent(t, file, logs)
	r, err := testcam.Read(t, "rtsp://"+addr+"/webcam", false)
	if err != nil {
		t.Fatalf("read: %v\n%s", err, logs.String())
	}
	r.WaitPackets(t, 30, 10*time.Second)
	started := waitLog(t, logs, func(e logEntry) bool { return e.Message == "command started" && e.Hook == "runOnDemand" }, "command start")
	child := waitLog(t, logs, func(e logEntry) bool { return strings.HasPrefix(e.Output, "child ") }, "child pid")
	childPid, _ := strconv.Atoi(strings.TrimPrefix(child.Output, "child "))
	if started.Path != "webcam" || processGone(started.Pid) || processGone(childPid) {
		t.Fatalf("command %+v, child %d not running", started, childPid)
	}
	r.Close()
	waitLog(t, logs, func(e logEntry) bool { return e.Message == "runOnDemand command stopped" && e.Reason == "no readers" }, "stop after the last reader")
	waitGone(t, started.Pid, "the runOnDemand command")
	waitGone(t, childPid, "the command's child")
}

// A command that never publishes: the reader is refused after
// runOnDemandStartTimeout and the command is stopped.
func TestRunOnDemandStartTimeoutRefusesReader(t *testing.T) {
	line := shellquote.Join(os.Args[0]) + " cgtest-idle"
	file, addr := testConfig(t, t.TempDir(), fmt.Sprintf(`paths:
  webcam:
    source: publisher
    runOnDemand: %q
    runOnDemandStartTimeout: 300ms
`, line))
	logs := &testlog.Buffer{}
	startAgent(t, file, logs)
	if _, err := testcam.Read(t, "rtsp://"+addr+"/webcam", false); err == nil {
		t.Fatal("a reader got a path whose command never published")
	}
	started := waitLog(t, logs, func(e logEntry) bool { return e.Message == "command started" }, "command start")
	waitLog(t, logs, func(e logEntry) bool {
		return e.Message == "runOnDemand command stopped" && strings.Contains(e.Reason, "did not publish within 300ms")
	}, "stop after the start timeout")
	waitGone(t, started.Pid, "the idle command")
}
