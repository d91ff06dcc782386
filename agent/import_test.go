package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// import-mediamtx writes the camgate config to stdout and what it left out
// to stderr; the result passes check-config with every subsystem's rule.
func TestImportMediaMTXCLI(t *testing.T) {
	for _, name := range []string{"defaults", "windows-guide", "legacy"} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("conf", "mediamtx", "testdata", name+".mediamtx.yml")
			var out, errb bytes.Buffer
			if code := Main([]string{"import-mediamtx", in}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			want, _ := os.ReadFile(filepath.Join("conf", "mediamtx", "testdata", name+".camgate.yml"))
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("stdout is not the golden file:\n%s", out.String())
			}
			if name != "windows-guide" && !strings.Contains(errb.String(), "Not carried over from "+name+".mediamtx.yml") {
				t.Errorf("stderr: %s", errb.String())
			}
			file := filepath.Join(t.TempDir(), "camgate.yml")
			if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			var co, ce bytes.Buffer
			if code := Main([]string{"check-config", "-c", file}, &co, &ce); code != 0 {
				t.Fatalf("check-config of the result: %d %s", code, ce.String())
			}
		})
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"import-mediamtx"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage") {
		t.Errorf("no file: %d %q", code, errb.String())
	}
}

// check-config on a mediamtx.yml says what it is and names the command,
// instead of listing unknown keys.
func TestCheckConfigOnMediaMTXFile(t *testing.T) {
	in := filepath.Join("conf", "mediamtx", "testdata", "defaults.mediamtx.yml")
	for _, cmd := range []string{"check-config", "run"} {
		var out, errb bytes.Buffer
		if code := Main([]string{cmd, "-c", in}, &out, &errb); code != 1 {
			t.Fatalf("%s: exit %d", cmd, code)
		}
		msg := errb.String()
		if !strings.Contains(msg, "is a MediaMTX configuration") || !strings.Contains(msg, "camgate import-mediamtx "+in+" > camgate.yml") ||
			strings.Contains(msg, "unknown key") || strings.Count(msg, "\n") > 3 {
			t.Errorf("%s: %q", cmd, msg)
		}
	}
}
