package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunServiceUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "usage: camgate service"},
		{[]string{"restart"}, `unknown command "restart"`},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
		{[]string{"install", "-x"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if code := runService(context.Background(), c.args, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", c.args, code)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: output %q lacks %q", c.args, out.String(), c.want)
		}
	}
}

// install checks the config before touching the service manager.
func TestRunServiceInstallChecksConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "camgate.yml")
	if err := os.WriteFile(bad, []byte("rtsp:\n  adress: :8554\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file, want string
	}{
		{filepath.Join(dir, "missing.yml"), "missing.yml"},
		{bad, bad + ":2"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		if code := runService(context.Background(), []string{"install", "-c", c.file}, &out); code != 1 {
			t.Errorf("install -c %s: exit %d, want 1", c.file, code)
		}
		if !strings.Contains(out.String(), "check config") || !strings.Contains(out.String(), c.want) {
			t.Errorf("install -c %s: output %q lacks %q", c.file, out.String(), c.want)
		}
	}
}
