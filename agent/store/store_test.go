package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
)

func TestOpenCreatesFileAndCountsBoots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", store.FileName)
	for boot := uint64(1); boot <= 3; boot++ {
		s, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.BootCount(); got != boot {
			t.Fatalf("boot %d: BootCount = %d", boot, got)
		}
		if s.Recovered() != nil {
			t.Fatalf("Recovered = %+v on a healthy file", s.Recovered())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Fatalf("file mode %o, want 600", mode)
	}
}

func TestAgentIDGeneratedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	calls := 0
	gen := func() (string, error) { calls++; return "cg-0001", nil }
	s := storetest.Open(t, path, store.Options{})
	for range 2 {
		id, err := s.AgentID(gen)
		if err != nil || id != "cg-0001" {
			t.Fatalf("AgentID = %q, %v", id, err)
		}
	}
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	id, err := s.AgentID(func() (string, error) { return "", errors.New("must not be called") })
	if err != nil || id != "cg-0001" {
		t.Fatalf("after reopen AgentID = %q, %v", id, err)
	}
	if calls != 1 {
		t.Fatalf("gen called %d times, want 1", calls)
	}
}

func TestAgentIDGenError(t *testing.T) {
	s := storetest.New(t, store.Options{})
	if _, err := s.AgentID(func() (string, error) { return "", errors.New("no machine id") }); err == nil {
		t.Fatal("want error from gen")
	}
	if _, err := s.AgentID(func() (string, error) { return "", nil }); err == nil {
		t.Fatal("want error for empty id")
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	storetest.Open(t, path, store.Options{})
	start := time.Now()
	_, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("second Open took %s", el)
	}
	for _, want := range []string{"open store", path, "another camgate is using it", "timeout 200ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	for name, content := range map[string][]byte{
		"text":      []byte("this is not a database\n"),
		"zeros-16k": make([]byte, 16<<10),
		"one-byte":  {0x42},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, store.FileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			s := storetest.Open(t, path, store.Options{Now: func() time.Time { return now }})
			want := path + ".corrupt-20260304T050607Z"
			if r := s.Recovered(); r == nil || r.MovedTo != want {
				t.Fatalf("Recovered = %+v, want moved to %q", r, want)
			}
			old, err := os.ReadFile(want)
			if err != nil || string(old) != string(content) {
				t.Fatalf("moved file: %v (content kept: %v)", err, string(old) == string(content))
			}
			if s.BootCount() != 1 {
				t.Fatalf("fresh file BootCount = %d", s.BootCount())
			}
			if _, _, err := s.AppendOutbox("events", func(uint64) ([]byte, error) { return []byte("{}"), nil }); err != nil {
				t.Fatalf("fresh store unusable: %v", err)
			}
		})
	}
}

func TestOpenUnreadableDirIsNotCorrupt(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err := store.Open(filepath.Join(dir, store.FileName), store.Options{})
	if err == nil {
		t.Fatal("want error")
	}
}
