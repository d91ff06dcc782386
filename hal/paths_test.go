package hal

import (
	"path/filepath"
	"testing"
)

func TestDefaultPaths(t *testing.T) {
	if got := DefaultDataDir(false); got != "data" {
		t.Errorf("data dir by hand = %q, want ./data", got)
	}
	if got := DefaultLogFile(false); got != "" {
		t.Errorf("log file by hand = %q, want stderr only", got)
	}
	for name, p := range map[string]string{
		"service data dir": DefaultDataDir(true),
		"config file":      DefaultConfigFile(),
	} {
		if !filepath.IsAbs(p) || filepath.Base(filepath.Dir(p)) != "camgate" && filepath.Base(p) != "camgate" {
			t.Errorf("%s = %q, want an absolute path in a camgate directory", name, p)
		}
	}
	if lf := DefaultLogFile(true); lf != "" && !filepath.IsAbs(lf) {
		t.Errorf("service log file = %q, want absolute or none", lf)
	}
}
