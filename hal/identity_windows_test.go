//go:build windows

package hal

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentIDFromMachineGuid(t *testing.T) {
	a, err := AgentIDFromMachine()
	if err != nil {
		t.Fatalf("read MachineGuid: %v", err)
	}
	b, err := AgentIDFromMachine()
	if err != nil || a != b {
		t.Fatalf("second read = %q, %v; want %q", b, err, a)
	}
	if !strings.HasPrefix(a, "cg-") || len(a) != len("cg-")+12 {
		t.Fatalf("id = %q, want cg- and 12 hex digits", a)
	}
}

// A service has no console: its log goes to ProgramData, next to the data.
func TestWindowsServiceLogFile(t *testing.T) {
	lf := DefaultLogFile(true)
	if filepath.Dir(filepath.Dir(lf)) != DefaultDataDir(true) || filepath.Base(lf) != "camgate.log" {
		t.Fatalf("service log file = %q, want %s\\logs\\camgate.log", lf, DefaultDataDir(true))
	}
}
