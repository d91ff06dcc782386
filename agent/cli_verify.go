package agent

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/hal"
)

const verifyUsage = `usage: camgate verify FILE [-sig FILE.minisig] [-P KEY] [-c CONFIG]

Checks the minisign signature of a downloaded release archive or binary:
against KEY when given (the base64 line of minisign.pub), else against
update.publicKeys of the config (-c, else the system config file when it
exists, else the embedded defaults, which hold camgate's release key).
Without -sig, FILE.minisig is used; when that does not exist, FILE must be
listed in SHA256SUMS beside it, whose signature SHA256SUMS.minisig is
checked instead. Exit 0 when the signature holds, 1 when not.
`

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage) }
	sig := fs.String("sig", "", "signature file; default FILE.minisig")
	key := fs.String("P", "", "public key (base64 line of minisign.pub); default: update.publicKeys")
	cfgFile := fs.String("c", "", "config file whose update.publicKeys are used")
	// The file may come before the flags, as in the usage line.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprint(stderr, verifyUsage)
		return 2
	}
	if file == "" {
		fmt.Fprint(stderr, verifyUsage)
		return 2
	}
	keys, err := verifyKeys(*key, *cfgFile)
	if err != nil {
		fmt.Fprintln(stderr, "camgate verify:", err)
		return 1
	}
	msg, err := verifyFile(keys, file, *sig)
	if err != nil {
		fmt.Fprintf(stderr, "camgate verify: %s: FAILED: %v\n", file, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%s)\n", file, msg)
	return 0
}

func verifyKeys(key, cfgFile string) (update.Keys, error) {
	if key != "" {
		return update.ParseKeys([]string{key})
	}
	if cfgFile == "" {
		if _, err := os.Stat(hal.DefaultConfigFile()); err == nil {
			cfgFile = hal.DefaultConfigFile()
		}
	}
	cfg, err := conf.Load(cfgFile, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	keys, err := update.ParseKeys(cfg.Update.PublicKeys)
	if err == nil && len(keys) == 0 {
		err = update.ErrNoKeys
	}
	return keys, err
}

// verifyFile checks file against its .minisig, or against a signed
// SHA256SUMS beside it.
func verifyFile(keys update.Keys, file, sigFile string) (string, error) {
	if sigFile == "" {
		sigFile = file + ".minisig"
		if _, err := os.Stat(sigFile); errors.Is(err, os.ErrNotExist) {
			return verifyBySums(keys, file)
		}
	}
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		return "", err
	}
	v, err := keys.VerifyFile(file, sig)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("signed by key %s; trusted comment: %s", v.KeyID, v.TrustedComment), nil
}

func verifyBySums(keys update.Keys, file string) (string, error) {
	sums := filepath.Join(filepath.Dir(file), "SHA256SUMS")
	sig, err := os.ReadFile(sums + ".minisig")
	if err != nil {
		return "", fmt.Errorf("no %s.minisig and no signed SHA256SUMS beside it: %w", filepath.Base(file), err)
	}
	v, err := keys.VerifyFile(sums, sig)
	if err != nil {
		return "", fmt.Errorf("SHA256SUMS: %w", err)
	}
	want, err := sumOf(sums, filepath.Base(file))
	if err != nil {
		return "", err
	}
	got, err := update.FileSHA256(file)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("SHA-256 %s, SHA256SUMS says %s", got, want)
	}
	return fmt.Sprintf("listed in SHA256SUMS, signed by key %s", v.KeyID), nil
}

func sumOf(sums, name string) (string, error) {
	f, err := os.Open(sums)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && strings.TrimPrefix(fields[1], "*") == name {
			return strings.ToLower(fields[0]), nil
		}
	}
	return "", fmt.Errorf("%s is not listed in SHA256SUMS", name)
}
