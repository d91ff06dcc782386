//go:build unix

package hal

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/testlog"
)

// alive tells whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err) // no /proc (macOS, BSD): kill said it exists
	}
	// pid (comm) S ...: the state follows the last ")".
	s := string(b)
	st := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(st) > 0 && st[0] != "Z" && st[0] != "X"
}

// SIGTERM comes first: a child that handles it exits by itself.
func TestProcessTreeStopIsPoliteFirst(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, self()+" cgtest-parent wait polite", out)
	gc, _ := strconv.Atoi(waitLine(t, out, "grandchild "))
	waitLine(t, out, "child ")
	pt.Stop(5 * time.Second)
	waitGone(t, gc)
	if !strings.Contains(out.String(), "bye") {
		t.Fatalf("the child was not asked to stop:\n%s", out.String())
	}
}

// A child that ignores SIGTERM gets SIGKILL after the grace.
func TestProcessTreeStopKillsWhatIgnoresTERM(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, self()+" cgtest-parent wait stubborn", out)
	gc, _ := strconv.Atoi(waitLine(t, out, "grandchild "))
	waitLine(t, out, "child ")
	pt.Stop(200 * time.Millisecond)
	waitGone(t, gc)
}
