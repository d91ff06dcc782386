// Command release makes and uses camgate's release signing key, in the
// format of the minisign tool (https://jedisct1.github.io/minisign/), so
// operators verify releases with `minisign -Vm FILE -P KEY` or with
// `camgate verify FILE`:
//
//	go run ./internal/cmd/release keygen [-dir ~/.camgate-release]
//	go run ./internal/cmd/release sign -key ~/.camgate-release/camgate.key FILE...
//
// keygen writes camgate.key (secret, mode 0600) and camgate.pub into dir
// and refuses to overwrite them; the secret key never belongs in the
// repository. sign writes FILE.minisig beside each FILE (prehashed Ed25519,
// minisign's default since 0.10) with the file name in the trusted comment.
// When $RELEASE_KEY_PASSWORD is set, keygen encrypts the secret key with it
// and sign decrypts with it; without it the key is stored unencrypted and
// protected by its file mode only.
//
// It is written in Go on aead.dev/minisign so a release needs no minisign
// binary on the build machine; the minisign tool is only needed to check
// the result independently.
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  release keygen [-dir DIR]          new key pair: DIR/camgate.key, DIR/camgate.pub (default ~/.camgate-release)
  release sign -key FILE FILE...     write FILE.minisig for each FILE
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], stdout, stderr)
	case "sign":
		err = sign(args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "release:", err)
		return 1
	}
	return 0
}

func defaultDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".camgate-release"
	}
	return filepath.Join(home, ".camgate-release")
}

func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultDir(), "directory for camgate.key and camgate.pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secPath, pubPath := filepath.Join(*dir, "camgate.key"), filepath.Join(*dir, "camgate.pub")
	for _, p := range []string{secPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("keygen: %s exists; move it away first (a new key invalidates the published one)", p)
		}
	}
	pub, sec, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	var secText []byte
	if pw := os.Getenv("RELEASE_KEY_PASSWORD"); pw != "" {
		secText, err = minisign.EncryptKey(pw, sec)
	} else {
		secText, err = sec.MarshalText()
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubText, _ := pub.MarshalText()
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(secPath, append(secText, '\n'), 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, append(pubText, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secret key: %s (keep it off the repository)\npublic key: %s\n%s\n", secPath, pubPath, pub.String())
	return nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: write %s: %w", path, err)
	}
	return nil
}

func loadKey(path string) (minisign.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("read secret key: %w", err)
	}
	var k minisign.PrivateKey
	if minisign.IsEncrypted(b) {
		pw := os.Getenv("RELEASE_KEY_PASSWORD")
		if pw == "" {
			return k, errors.New("the secret key is encrypted: set RELEASE_KEY_PASSWORD")
		}
		return minisign.DecryptKey(pw, b)
	}
	if err := k.UnmarshalText(b); err != nil {
		return k, fmt.Errorf("read secret key %s: %w", path, err)
	}
	return k, nil
}

func sign(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", filepath.Join(defaultDir(), "camgate.key"), "secret key file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("sign: no files")
	}
	key, err := loadKey(*keyPath)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		r := minisign.NewReader(f)
		_, err = io.Copy(io.Discard, r)
		f.Close()
		if err != nil {
			return fmt.Errorf("sign %s: %w", name, err)
		}
		trusted := "timestamp:" + strconv.FormatInt(time.Now().Unix(), 10) + "\tfile:" + filepath.Base(name) + "\thashed"
		untrusted := "signature from camgate release key " + strings.ToUpper(strconv.FormatUint(key.ID(), 16))
		sig := r.SignWithComments(key, trusted, untrusted)
		if err := os.WriteFile(name+".minisig", sig, 0o644); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		fmt.Fprintln(stdout, name+".minisig")
	}
	return nil
}
