package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
)

// Lines of the trial protocol. The candidate writes lineHealthy on its
// standard output once its trial criteria hold; the supervising agent
// writes lineCommitted on the candidate's standard input after it has
// recorded the commit, and the candidate then stops gracefully. End of
// input without lineCommitted tells the candidate to stop: it was not
// committed.
const (
	lineHealthy   = "healthy"
	lineCommitted = "committed"
)

// TrialOptions configure RunTrial.
type TrialOptions struct {
	// DataDir is the agent's data directory; required.
	DataDir string
	// Executable is the running binary; default os.Executable(). On
	// in-place platforms the candidate is swapped in at this path.
	Executable string
	// Args are the candidate's arguments, e.g. run -c FILE.
	Args []string
	// AsService tells the candidate to use the service's directories.
	AsService bool
	// Timeout bounds the wait for healthy; default 60s.
	Timeout time.Duration
	// Running is the version of the running agent.
	Running string
	// Stderr receives the candidate's standard error (its log); default
	// os.Stderr.
	Stderr io.Writer
	Log    zerolog.Logger
}

// Outcome is how a trial ended.
type Outcome struct {
	Committed bool
	// Run is the binary to hand over to after a commit.
	Run    Binary
	Reason string // why it was rolled back
}

// RunTrial tries the candidate recorded in the state file (PhaseTrial):
// it starts it as a child that cannot outlive this process, waits until
// the child says it is healthy, then records the commit and tells the
// child, which stops; the caller hands over to Outcome.Run. A child that
// exits, does not become healthy within Timeout, or is still on trial
// when ctx ends is killed with every process it started, and the state is
// rolled back: the caller runs its own agent again. The agent's store must
// be closed: the candidate opens it.
func RunTrial(ctx context.Context, o TrialOptions) (Outcome, error) {
	l := NewLayout(o.DataDir)
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return Outcome{}, fmt.Errorf("trial: own executable: %w", err)
		}
		o.Executable = exe
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	log := o.Log.With().Str("component", "update").Logger()
	st, err := l.LoadState()
	if err != nil {
		return Outcome{}, fmt.Errorf("trial: %w", err)
	}
	if st.Phase != PhaseTrial || st.Candidate == nil {
		return Outcome{}, errors.New("trial: no candidate recorded")
	}
	cand := *st.Candidate
	if err := snapshotStore(o.DataDir, l.snapshotPath()); err != nil {
		log.Warn().Err(err).Msg("trial: store snapshot failed; a rollback cannot undo a schema change")
	}

	rollback := func(reason string) (Outcome, error) {
		log.Warn().Str("version", cand.Version).Str("reason", redact.String(reason)).Msg("update rolled back")
		st.Phase, st.Candidate = PhaseIdle, nil
		st.Report = &Report{Event: uplink.EventUpdateRolledBack, Version: cand.Version, From: o.Running, Reason: redact.String(reason), At: time.Now().UTC()}
		if err := l.SaveState(st); err != nil {
			return Outcome{Reason: reason}, fmt.Errorf("trial: %w", err)
		}
		if !sameFile(cand.Path, o.Executable) {
			_ = os.Remove(cand.Path)
		}
		return Outcome{Reason: reason}, nil
	}

	cmd := exec.Command(cand.Path, o.Args...)
	mode := "foreground"
	if o.AsService {
		mode = "service"
	}
	cmd.Env = append(childEnv(os.Environ()), envTrial+"="+mode)
	cmd.Dir, _ = os.Getwd()
	healthy := make(chan struct{})
	var once sync.Once
	cmd.Stdout = &lineWriter{f: func(line string) {
		if strings.TrimSpace(line) == lineHealthy {
			once.Do(func() { close(healthy) })
		}
	}}
	tail := &tailBuffer{w: o.Stderr, n: 8}
	cmd.Stderr = tail
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return rollback(fmt.Sprintf("start: %v", err))
	}
	child, err := hal.StartTrialChild(cmd)
	if err != nil {
		return rollback(fmt.Sprintf("start: %v", err))
	}
	defer child.Release()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// stop ends the candidate: gracefully when asked (end of its input),
	// killed with its process tree after grace.
	stop := func(grace time.Duration) {
		_ = stdin.Close()
		if grace > 0 {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-exited:
				return
			case <-t.C:
			}
		}
		_ = child.KillTree()
		<-exited
	}
	log.Info().Str("version", cand.Version).Int("pid", cmd.Process.Pid).Dur("timeout", o.Timeout).Msg("update: candidate on trial")

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	select {
	case err := <-exited:
		return rollback(fmt.Sprintf("the candidate %s: %s", exitText(err), tail.last()))
	case <-timer.C:
		stop(0)
		return rollback(fmt.Sprintf("the candidate was not healthy within %s: %s", o.Timeout, tail.last()))
	case <-ctx.Done():
		stop(5 * time.Second)
		return rollback("the agent was stopped during the trial")
	case <-healthy:
	}

	select {
	case err := <-exited:
		// Healthy and gone at once: not a binary to commit.
		return rollback(fmt.Sprintf("the candidate %s right after it said healthy: %s", exitText(err), tail.last()))
	default:
	}
	log.Info().Str("version", cand.Version).Msg("update: candidate healthy; committing")
	if hal.UpdateInPlace() {
		return commitInPlace(l, st, cand, o, stdin, exited, child, log)
	}
	// Linux: one atomic state write switches the binary the installed
	// one redirects to.
	prev := st.Current
	if st.Current == nil && st.Installed == "" {
		st.Installed, _ = FileSHA256(o.Executable)
	}
	old := st.Previous
	st.Phase, st.Current, st.Previous, st.Candidate, st.Starts = PhaseIdle, &cand, prev, nil, 0
	st.Report = &Report{Event: uplink.EventUpdateCommitted, Version: cand.Version, From: o.Running, At: time.Now().UTC()}
	if err := l.SaveState(st); err != nil {
		stop(0)
		st.Current, st.Previous = prev, old
		return rollback(fmt.Sprintf("record the commit: %v", err))
	}
	if old != nil && old.Path != cand.Path && (prev == nil || old.Path != prev.Path) {
		_ = os.Remove(old.Path) // one generation is kept
	}
	finishChild(stdin, exited, child, log)
	return Outcome{Committed: true, Run: cand}, nil
}

// commitInPlace swaps the candidate into the running executable's path,
// recording the swap before (PhaseSwap) and after, so Resolve can tell by
// the files' hashes how far an interrupted swap got.
func commitInPlace(l Layout, st State, cand Binary, o TrialOptions, stdin io.WriteCloser, exited chan error, child *hal.TrialChild, log zerolog.Logger) (Outcome, error) {
	st.Phase = PhaseSwap
	if err := l.SaveState(st); err != nil {
		return Outcome{}, fmt.Errorf("record the swap: %w", err)
	}
	// The candidate must stop before its file is renamed.
	finishChild(stdin, exited, child, log)
	oldSum, _ := FileSHA256(o.Executable)
	old := Binary{Path: oldPath(o.Executable), SHA256: oldSum, Version: o.Running}
	if err := hal.SwapExecutable(o.Executable, cand.Path, old.Path); err != nil {
		st.Phase, st.Candidate = PhaseIdle, nil
		st.Report = &Report{Event: uplink.EventUpdateRolledBack, Version: cand.Version, From: o.Running, Reason: redact.Error(err), At: time.Now().UTC()}
		_ = os.Remove(cand.Path)
		if serr := l.SaveState(st); serr != nil {
			return Outcome{}, serr
		}
		return Outcome{Reason: err.Error()}, nil
	}
	cand.Path = o.Executable
	st.Phase, st.Current, st.Previous, st.Candidate = PhaseIdle, &cand, &old, nil
	st.Report = &Report{Event: uplink.EventUpdateCommitted, Version: cand.Version, From: o.Running, At: time.Now().UTC()}
	if err := l.SaveState(st); err != nil {
		return Outcome{}, fmt.Errorf("record the commit: %w", err)
	}
	return Outcome{Committed: true, Run: cand}, nil
}

// oldPath is where the in-place swap keeps the previous executable.
func oldPath(exe string) string {
	ext := filepath.Ext(exe)
	return strings.TrimSuffix(exe, ext) + ".old" + ext
}

// finishChild tells the candidate it is committed and waits for its
// graceful stop (killing it after 15 s).
func finishChild(stdin io.WriteCloser, exited chan error, child *hal.TrialChild, log zerolog.Logger) {
	_, _ = io.WriteString(stdin, lineCommitted+"\n")
	_ = stdin.Close()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		log.Warn().Msg("update: committed candidate did not stop within 15s; killed")
		_ = child.KillTree()
		<-exited
	}
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "exited: " + ee.ProcessState.String()
	}
	if err == nil {
		return "exited with status 0 before it was healthy"
	}
	return "failed: " + err.Error()
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// snapshotStore copies the closed store so a rollback can undo a schema
// migration made by the candidate (see RestoreSnapshot).
func snapshotStore(dataDir, dst string) error {
	src, err := os.Open(filepath.Join(dataDir, "camgate.db"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer src.Close()
	return copyFile(src, dst, 1<<40)
}

// RestoreSnapshot puts back the store as it was before the last trial.
// The agent calls it when, after a rollback, its store refuses to open
// because the candidate migrated it to a newer schema.
func RestoreSnapshot(dataDir string) error {
	snap := NewLayout(dataDir).snapshotPath()
	if _, err := os.Stat(snap); err != nil {
		return fmt.Errorf("restore store snapshot: %w", err)
	}
	dst := filepath.Join(dataDir, "camgate.db")
	if err := os.Rename(snap, dst); err != nil {
		return fmt.Errorf("restore store snapshot: %w", err)
	}
	return syncDir(dataDir)
}

// DropSnapshot removes the store snapshot of the last trial once the
// store has opened: an old copy must never replace newer state later.
func DropSnapshot(dataDir string) {
	_ = os.Remove(NewLayout(dataDir).snapshotPath())
}

// lineWriter is an io.Writer calling f for each complete line.
type lineWriter struct {
	f    func(line string)
	part []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.f(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	if len(w.part) > 4096 {
		w.part = w.part[:0] // not the protocol: a line that long is noise
	}
	return len(p), nil
}

// tailBuffer copies to w and keeps the last n lines.
type tailBuffer struct {
	w     io.Writer
	n     int
	mu    sync.Mutex
	lines []string
	part  string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	_, _ = t.w.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		if l = strings.TrimSpace(l); l != "" {
			t.lines = append(t.lines, l)
		}
	}
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
	return len(p), nil
}

// last is the kept lines, the most recent last, or a note that there were
// none.
func (t *tailBuffer) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if p := strings.TrimSpace(t.part); p != "" {
		lines = append(append([]string(nil), lines...), p)
	}
	if len(lines) == 0 {
		return "no output"
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return "last output: " + strings.Join(lines, " | ")
}
