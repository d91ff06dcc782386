package hal

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/camgate/camgate/internal/testlog"
)

// alive tells whether pid runs.
func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	var code uint32
	if windows.GetExitCodeProcess(h, &code) != nil {
		return false
	}
	return code == 259 // STILL_ACTIVE
}

// A "cmd " line goes to cmd.exe as typed: its own variables and
// operators work, and $MTX_PATH is replaced as in MediaMTX.
func TestProcessTreeCmdLine(t *testing.T) {
	out := &testlog.Buffer{}
	pt := start(t, `cmd /c echo one $MTX_PATH %RTSP_PORT% & echo two`, out)
	<-pt.Exited()
	pt.Stop(time.Second)
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if !strings.Contains(got, "one cam1 8554") || !strings.Contains(got, "two") {
		t.Fatalf("output %q", got)
	}
}
