package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigLabels: a label that selectors could not name is refused
// with its file line and key.
func TestCheckConfigLabels(t *testing.T) {
	file := filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(file, []byte("agent:\n  labels:\n    site: plant-3\n    room: \"a,b\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := cmdCheckConfig([]string{"-c", file}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), ":4: agent.labels.room") {
		t.Fatalf("check-config: %d %q", code, errOut.String())
	}
}
