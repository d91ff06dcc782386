package agent

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

// -h and --help print the command list, as "camgate help" does, not run's
// flags.
func TestHelpFlagsPrintCommands(t *testing.T) {
	for _, a := range []string{"-h", "--help", "-help", "help"} {
		var out, errb bytes.Buffer
		if code := Main([]string{a}, &out, &errb); code != 0 {
			t.Errorf("%s: exit %d, stderr %q", a, code, errb.String())
		}
		for _, want := range []string{"check-config", "import-mediamtx", "version", "service", "fleet"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", a, want, out.String())
			}
		}
	}
}

func TestVersionFallsBackToBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "5698c38da46bfa3de046c18ae001959f16905f8b"},
		{Key: "vcs.time", Value: "2026-11-29T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	c, b := stamps("unknown", "unknown", bi)
	if c != "5698c38da46b+dirty" || b != "2026-11-29T10:00:00Z (commit time)" {
		t.Errorf("go build: got %q, %q", c, b)
	}
	// -ldflags stamps win.
	if c, b := stamps("abc123", "2026-12-01", bi); c != "abc123" || b != "2026-12-01" {
		t.Errorf("stamped: got %q, %q", c, b)
	}
	// No VCS information (a build outside a checkout, -buildvcs=false).
	if c, b := stamps("unknown", "unknown", &debug.BuildInfo{}); c != "unknown" || b != "unknown" {
		t.Errorf("no vcs: got %q, %q", c, b)
	}
}
