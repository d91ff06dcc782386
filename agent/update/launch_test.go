package update

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/uplink"
)

// binFile writes a pretend binary and returns its record.
func binFile(t *testing.T, path, body, version string) *Binary {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := FileSHA256(path)
	return &Binary{Path: path, SHA256: sum, Version: version}
}

// TestResolve covers what `camgate run` finds at start after each way an
// update can end or be interrupted.
func TestResolve(t *testing.T) {
	type setup struct {
		l         Layout
		self      *Binary
		installed string
	}
	newSetup := func(t *testing.T) setup {
		dir := t.TempDir()
		self := binFile(t, filepath.Join(dir, "usr", "camgate"), "installed v1", "v1")
		return setup{l: NewLayout(filepath.Join(dir, "data")), self: self, installed: self.SHA256}
	}
	log := zerolog.Nop()
	save := func(t *testing.T, l Layout, st State) {
		t.Helper()
		if err := l.SaveState(st); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("interrupted trial rolls back", func(t *testing.T) {
		s := newSetup(t)
		cand := binFile(t, filepath.Join(s.l.Bin, "camgate-aaaa"), "v2", "v2")
		save(t, s.l, State{Phase: PhaseTrial, Candidate: cand})
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log); run != "" {
			t.Fatalf("runs %s, want the installed binary", run)
		}
		st, _ := s.l.LoadState()
		if st.Phase != PhaseIdle || st.Candidate != nil || st.Report == nil || st.Report.Event != uplink.EventUpdateRolledBack {
			t.Fatalf("state %+v", st)
		}
		if _, err := os.Stat(cand.Path); err == nil {
			t.Error("candidate file kept")
		}
		r, _ := TakeReport(filepath.Dir(s.l.Dir))
		if r == nil || !strings.Contains(r.Reason, "before the candidate was committed") {
			t.Fatalf("report %+v", r)
		}
		if r, _ := TakeReport(filepath.Dir(s.l.Dir)); r != nil {
			t.Error("report given twice")
		}
	})

	t.Run("committed update is run, stale files removed", func(t *testing.T) {
		s := newSetup(t)
		cur := binFile(t, filepath.Join(s.l.Bin, "camgate-bbbb"), "v2", "v2")
		stale := binFile(t, filepath.Join(s.l.Bin, "camgate-cccc"), "v3", "v3")
		save(t, s.l, State{Current: cur, Installed: s.installed})
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log); run != cur.Path {
			t.Fatalf("runs %q, want %s", run, cur.Path)
		}
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, true, log); run != "" {
			t.Fatalf("redirected again to %q", run)
		}
		if run := Resolve(filepath.Dir(s.l.Dir), cur.Path, false, log); run != "" {
			t.Fatalf("the committed binary redirects to %q", run)
		}
		if _, err := os.Stat(stale.Path); err == nil {
			t.Error("unreferenced binary kept")
		}
	})

	t.Run("package upgrade wins", func(t *testing.T) {
		s := newSetup(t)
		cur := binFile(t, filepath.Join(s.l.Bin, "camgate-bbbb"), "v2", "v2")
		save(t, s.l, State{Current: cur, Installed: "0000"})
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log); run != "" {
			t.Fatalf("runs %s after the installed binary changed", run)
		}
		if st, _ := s.l.LoadState(); st.Current != nil {
			t.Fatalf("state still names %+v", st.Current)
		}
	})

	t.Run("damaged update falls back", func(t *testing.T) {
		s := newSetup(t)
		prev := binFile(t, filepath.Join(s.l.Bin, "camgate-pppp"), "v2", "v2")
		cur := binFile(t, filepath.Join(s.l.Bin, "camgate-dddd"), "v3", "v3")
		_ = os.WriteFile(cur.Path, []byte("v3 trunc"), 0o755)
		save(t, s.l, State{Current: cur, Previous: prev, Installed: s.installed})
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log); run != prev.Path {
			t.Fatalf("runs %q, want the previous %s", run, prev.Path)
		}
		_ = os.Remove(prev.Path)
		if run := Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log); run != "" {
			t.Fatalf("runs %q, want the installed binary", run)
		}
	})

	t.Run("interrupted swap resolved by hashes", func(t *testing.T) {
		s := newSetup(t)
		// The candidate reached the executable's path: committed.
		cand := &Binary{Path: s.self.Path + ".new", SHA256: s.self.SHA256, Version: "v2"}
		save(t, s.l, State{Phase: PhaseSwap, Candidate: cand})
		Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log)
		st, _ := s.l.LoadState()
		if st.Phase != PhaseIdle || st.Current == nil || st.Current.Version != "v2" || st.Report.Event != uplink.EventUpdateCommitted {
			t.Fatalf("swap done: state %+v", st)
		}
		// It did not: rolled back.
		cand = binFile(t, s.self.Path+".new", "v3", "v3")
		save(t, s.l, State{Phase: PhaseSwap, Candidate: cand})
		Resolve(filepath.Dir(s.l.Dir), s.self.Path, false, log)
		st, _ = s.l.LoadState()
		if st.Phase != PhaseIdle || st.Report.Event != uplink.EventUpdateRolledBack {
			t.Fatalf("swap not done: state %+v", st)
		}
	})
}

// TestResolveCrashLoop: a committed update started maxStarts times
// without the agent confirming it is dropped for the previous binary.
func TestResolveCrashLoop(t *testing.T) {
	dir := t.TempDir()
	self := binFile(t, filepath.Join(dir, "usr", "camgate"), "installed", "v1")
	l := NewLayout(filepath.Join(dir, "data"))
	prev := binFile(t, filepath.Join(l.Bin, "camgate-pppp"), "v2", "v2")
	cur := binFile(t, filepath.Join(l.Bin, "camgate-cccc"), "v3", "v3")
	if err := l.SaveState(State{Current: cur, Previous: prev, Installed: self.SHA256}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxStarts; i++ {
		if run := Resolve(filepath.Dir(l.Dir), self.Path, false, zerolog.Nop()); run != cur.Path {
			t.Fatalf("start %d runs %q", i+1, run)
		}
	}
	if run := Resolve(filepath.Dir(l.Dir), self.Path, false, zerolog.Nop()); run != prev.Path {
		t.Fatalf("after %d unconfirmed starts runs %q, want the previous %s", maxStarts, run, prev.Path)
	}
	st, _ := l.LoadState()
	if st.Current == nil || st.Current.Version != "v2" || st.Report == nil || st.Report.Event != uplink.EventUpdateRolledBack || st.Report.Version != "v3" {
		t.Fatalf("state %+v report %+v", st, st.Report)
	}
}
