package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camgate/camgate/internal/updatetest"
)

func TestCLIVerify(t *testing.T) {
	k, other := updatetest.NewKey(t), updatetest.NewKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "camgate_1.0.0_linux_amd64.tar.gz")
	body := []byte("release archive")
	_ = os.WriteFile(file, body, 0o644)
	_ = os.WriteFile(file+".minisig", []byte(k.Sign(body)), 0o644)
	cfg := filepath.Join(dir, "camgate.yml")
	_ = os.WriteFile(cfg, []byte("update:\n  publicKeys: ["+k.PublicKey()+"]\n"), 0o600)

	verify := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(append([]string{"verify"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	for name, c := range map[string]struct {
		args []string
		code int
		want string
	}{
		"config keys":        {[]string{file, "-c", cfg}, 0, "OK"},
		"-P key":             {[]string{file, "-P", k.PublicKey()}, 0, "OK"},
		"flags first":        {[]string{"-P", k.PublicKey(), file}, 0, "OK"},
		"other key":          {[]string{file, "-P", other.PublicKey()}, 1, "not one of the public keys"},
		"release key":        {[]string{file}, 1, "not one of the public keys"}, // embedded defaults: camgate's key
		"explicit signature": {[]string{file, "-sig", file + ".minisig", "-c", cfg}, 0, "OK"},
		"no file":            {nil, 2, "usage"},
	} {
		code, out := verify(c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, output %q; want %d and %q", name, code, out, c.code, c.want)
		}
	}

	// Without FILE.minisig: through a signed SHA256SUMS beside it.
	_ = os.Remove(file + ".minisig")
	sums := []byte(updatetest.SHA256(body) + "  " + filepath.Base(file) + "\n")
	_ = os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644)
	_ = os.WriteFile(filepath.Join(dir, "SHA256SUMS.minisig"), []byte(k.Sign(sums)), 0o644)
	if code, out := verify(file, "-c", cfg); code != 0 || !strings.Contains(out, "SHA256SUMS") {
		t.Fatalf("through SHA256SUMS: %d %s", code, out)
	}
	_ = os.WriteFile(file, []byte("tampered"), 0o644)
	if code, out := verify(file, "-c", cfg); code != 1 || !strings.Contains(out, "SHA256SUMS says") {
		t.Fatalf("tampered file through SHA256SUMS: %d %s", code, out)
	}
}
