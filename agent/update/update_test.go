package update

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/camgate/camgate/internal/updatetest"
	"github.com/camgate/camgate/uplink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVerifyFile(t *testing.T) {
	k, other := updatetest.NewKey(t), updatetest.NewKey(t)
	keys, err := ParseKeys([]string{other.PublicKey(), k.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	body := []byte("camgate release bytes")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.VerifyFile(file, []byte(k.Sign(body))); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	for name, c := range map[string]struct {
		keys Keys
		sig  string
		want string
	}{
		"tampered":    {keys, k.Sign([]byte("other bytes")), "does not match"},
		"unknown key": {keys[:1], k.Sign(body), "not one of the public keys"},
		"garbage":     {keys, "not a signature", "not in minisign's format"},
		"no keys":     {nil, k.Sign(body), "publicKeys is empty"},
	} {
		if _, err := c.keys.VerifyFile(file, []byte(c.sig)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	if _, err := ParseKeys([]string{"RWnotakey"}); err == nil {
		t.Error("a malformed public key parsed")
	}
}

func TestDownloadResumes(t *testing.T) {
	srv := updatetest.NewServer(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	url := srv.Put("bin", body)
	srv.Cut("bin", 300<<10)
	part := filepath.Join(t.TempDir(), "part")
	ctx := context.Background()
	client := srv.Client()
	var got []int64
	n, err := download(ctx, client, url, part, 8<<20, func(done, total int64) { got = append(got, done) })
	if err == nil {
		t.Fatal("a cut transfer succeeded")
	}
	if n < 100<<10 || n > 300<<10 {
		t.Fatalf("kept %d bytes of a transfer cut at 300 KiB", n)
	}
	n, err = download(ctx, client, url, part, 8<<20, func(int64, int64) {})
	if err != nil || n != int64(len(body)) {
		t.Fatalf("resume: %d bytes, %v", n, err)
	}
	if b, _ := os.ReadFile(part); !bytes.Equal(b, body) {
		t.Fatal("resumed file differs from the served one")
	}
	if r := srv.Ranges(); len(r) != 2 || r[1] == "" {
		t.Fatalf("Range headers %q: the second request did not resume", r)
	}
	if len(got) == 0 {
		t.Error("no progress reported")
	}
	// Over the limit: refused, partial file emptied.
	_ = os.Remove(part)
	if _, err := download(ctx, client, url, part, 1000, func(int64, int64) {}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if st, _ := os.Stat(part); st != nil && st.Size() != 0 {
		t.Errorf("partial file of %d bytes kept after a size refusal", st.Size())
	}
}

func TestProgressIsRateLimited(t *testing.T) {
	now := time.Unix(0, 0)
	var pcts []int
	p := &progressLimiter{now: func() time.Time { return now }, emit: func(pct int, _, _ int64) { pcts = append(pcts, pct) }}
	for i := int64(1); i <= 1000; i++ {
		if i%50 == 0 {
			now = now.Add(time.Second)
		}
		p.update(i, 1000)
	}
	if len(pcts) > 11 || pcts[len(pcts)-1] != 100 {
		t.Fatalf("progress events %v: want at most one per 10%% and 100 last", pcts)
	}
}

func TestExtractBinary(t *testing.T) {
	dir := t.TempDir()
	exe := []byte("\x7fELF pretend binary")
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{{"camgate_1_linux_amd64/README.md", "x"}, {"camgate_1_linux_amd64/camgate", string(exe)}} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("camgate_1_windows_amd64/camgate.exe")
	_, _ = w.Write(exe)
	zw.Close()
	for name, c := range map[string]struct {
		src     []byte
		exe     string
		archive bool
		err     string
	}{
		"tar.gz":        {tgz.Bytes(), "camgate", true, ""},
		"zip":           {zb.Bytes(), "camgate.exe", true, ""},
		"raw":           {exe, "camgate", false, ""},
		"tar.gz no bin": {tgz.Bytes(), "camgate.exe", true, "holds no camgate.exe"},
	} {
		src, dst := filepath.Join(dir, name+".in"), filepath.Join(dir, name+".out")
		_ = os.WriteFile(src, c.src, 0o600)
		archive, err := extractBinary(src, c.exe, dst, 1<<20)
		if archive != c.archive {
			t.Errorf("%s: archive = %v", name, archive)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", name, err, c.err)
			}
			continue
		}
		if b, _ := os.ReadFile(dst); err != nil || !bytes.Equal(b, exe) {
			t.Errorf("%s: %v, extracted %q", name, err, b)
		}
	}
}

// events records what an Updater raised.
type events struct {
	mu  sync.Mutex
	got []string
	ch  chan map[string]any
}

func (e *events) add(typ string, d any) {
	e.mu.Lock()
	e.got = append(e.got, typ)
	e.mu.Unlock()
	if typ != uplink.EventUpdateProgress {
		e.ch <- map[string]any{"type": typ, "detail": d}
	}
}

// TestUpdaterChecks runs real downloads from a local server through every
// refusal, then one that passes and is handed to the trial.
func TestUpdaterChecks(t *testing.T) {
	bins := t.TempDir()
	bad := updatetest.BuildBad(t, bins, "exit1", "v9")
	badBytes, _ := os.ReadFile(bad)
	k, other := updatetest.NewKey(t), updatetest.NewKey(t)
	srv := updatetest.NewServer(t)
	url := srv.Put("camgate", badBytes)
	notExe := srv.Put("notexe", []byte("not a program for this platform"))

	dataDir := t.TempDir()
	keys, _ := ParseKeys([]string{k.PublicKey()})
	ev := &events{ch: make(chan map[string]any, 16)}
	trials := make(chan Binary, 1)
	u, err := New(Options{DataDir: dataDir, Keys: keys, Version: "v1", Events: ev.add,
		Trial: func(c Binary) { trials <- c }, Log: zerolog.Nop(), Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	defer func() { cancel(); <-done }()

	good := Request{URL: url, SHA256: updatetest.SHA256(badBytes), Signature: k.Sign(badBytes), Version: "v9"}
	refused := func(name string, r Request, check Check) {
		t.Helper()
		rep, err := u.Start(r)
		if err != nil || !rep.Accepted {
			t.Fatalf("%s: not accepted: %+v %v", name, rep, err)
		}
		select {
		case e := <-ev.ch:
			d := e["detail"].(map[string]any)
			if e["type"] != uplink.EventUpdateFailed || d["check"] != string(check) {
				t.Fatalf("%s: event %v, want update.failed check %s", name, e, check)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no outcome", name)
		}
		for _, p := range []string{filepath.Join(dataDir, "update", "download.part"), filepath.Join(dataDir, "bin")} {
			if entries, _ := os.ReadDir(p); len(entries) > 0 {
				t.Fatalf("%s: %s left behind: %v", name, p, entries)
			}
			if _, err := os.Stat(p); err == nil && !strings.HasSuffix(p, "bin") {
				t.Fatalf("%s: %s left behind", name, p)
			}
		}
	}
	wrongSig := good
	wrongSig.Signature = other.Sign(badBytes)
	refused("signature of another key", wrongSig, CheckSignature)
	wrongSum := good
	wrongSum.SHA256 = updatetest.SHA256([]byte("x"))
	refused("sha256 mismatch", wrongSum, CheckSHA256)
	plat := Request{URL: notExe, SHA256: updatetest.SHA256([]byte("not a program for this platform")),
		Signature: k.Sign([]byte("not a program for this platform"))}
	refused("not runnable here", plat, CheckSelfTest)
	wrongVer := good
	wrongVer.Version = "v8"
	refused("version mismatch", wrongVer, CheckVersion)

	if _, err := u.Start(Request{URL: "ftp://x", SHA256: good.SHA256, Signature: good.Signature}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("ftp url: %v", err)
	}
	if rep, err := u.Start(Request{URL: url, SHA256: good.SHA256, Signature: good.Signature, Version: "v1"}); err != nil || !rep.Noop {
		t.Errorf("update to the running version: %+v %v, want a no-op", rep, err)
	}

	for len(srv.Started()) > 0 {
		<-srv.Started()
	}
	srv.Stall("camgate")
	if _, err := u.Start(good); err != nil {
		t.Fatal(err)
	}
	<-srv.Started()
	if _, err := u.Start(good); !errors.Is(err, ErrInProgress) {
		t.Fatalf("second update while one downloads: %v, want ErrInProgress", err)
	}
	srv.Release("camgate") // the stalled transfer breaks; the next one resumes
	select {
	case e := <-ev.ch:
		if d := e["detail"].(map[string]any); d["check"] != string(CheckDownload) {
			t.Fatalf("broken transfer: %v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no outcome of the broken transfer")
	}
	if _, err := u.Start(good); err != nil {
		t.Fatal(err)
	}
	var c Binary
	select {
	case c = <-trials:
	case e := <-ev.ch:
		t.Fatalf("good update refused: %v", e)
	case <-time.After(30 * time.Second):
		t.Fatal("good update never reached its trial")
	}
	if r := srv.Ranges(); r[len(r)-1] == "" {
		t.Errorf("the download after a broken transfer did not resume: ranges %q", r)
	}
	st, _ := NewLayout(dataDir).LoadState()
	if st.Phase != PhaseTrial || st.Candidate == nil || st.Candidate.Path != c.Path || c.Version != "v9" || !intact(&c) {
		t.Fatalf("state %+v, candidate %+v", st, c)
	}
	if _, err := u.Start(good); !errors.Is(err, ErrInProgress) {
		t.Errorf("update while one waits for its trial: %v", err)
	}
}

func TestConfirmResetsStarts(t *testing.T) {
	dataDir := t.TempDir()
	l := NewLayout(dataDir)
	if err := l.SaveState(State{Current: &Binary{Path: "x", Version: "v2"}, Starts: 2}); err != nil {
		t.Fatal(err)
	}
	u, err := New(Options{DataDir: dataDir, Events: func(string, any) {}, Trial: func(Binary) {}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	u.Confirm()
	if st, _ := l.LoadState(); st.Starts != 0 || st.Current == nil {
		t.Fatalf("state after Confirm %+v", st)
	}
}
