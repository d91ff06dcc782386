package interop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxCapture bounds the output a Proc keeps in memory; older bytes are
// dropped (the log file keeps everything).
const maxCapture = 1 << 20

// Proc is a child process with its combined stdout and stderr captured in
// memory and in a log file. Stop it with Stop or Kill; both wait for it.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string

	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write
	logf    *os.File

	done    chan struct{}
	waitErr error
}

// StartProc starts name with args. Output goes to logDir/<label>.log
// (label defaults to the program's base name). The child is killed if the
// starting thread dies (Linux: Pdeathsig), so an interrupted test leaves no
// orphans behind in the common case.
func StartProc(logDir, label, name string, args ...string) (*Proc, error) {
	return StartProcEnv(logDir, label, nil, name, args...)
}

// StartProcEnv is StartProc with env as the whole environment (nil: inherit).
func StartProcEnv(logDir, label string, env []string, name string, args ...string) (*Proc, error) {
	return startProc("", logDir, label, env, name, args...)
}

// StartProcIn is StartProc run in the directory dir (a program that writes
// files where it runs).
func StartProcIn(dir, logDir, label, name string, args ...string) (*Proc, error) {
	return startProc(dir, logDir, label, nil, name, args...)
}

func startProc(dir, logDir, label string, env []string, name string, args ...string) (*Proc, error) {
	if label == "" {
		label = filepath.Base(name)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	logPath := uniquePath(filepath.Join(logDir, label+".log"))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	fmt.Fprintf(f, "# %s %s\n", name, strings.Join(args, " "))
	p := &Proc{Name: label, LogPath: logPath, logf: f, changed: make(chan struct{}), done: make(chan struct{})}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = p
	cmd.Stderr = p
	if env != nil {
		cmd.Env = env
	}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p.Cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		p.mu.Lock()
		p.logf.Close()
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func uniquePath(p string) string {
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return p
	}
	ext := filepath.Ext(p)
	base := strings.TrimSuffix(p, ext)
	for i := 2; ; i++ {
		q := fmt.Sprintf("%s.%d%s", base, i, ext)
		if _, err := os.Stat(q); errors.Is(err, os.ErrNotExist) {
			return q
		}
	}
}

// Write implements io.Writer for the child's stdout and stderr.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.logf.Write(b) //nolint:errcheck // best effort: the in-memory copy is what tests read
	p.buf = append(p.buf, b...)
	if len(p.buf) > maxCapture {
		p.buf = append(p.buf[:0], p.buf[len(p.buf)-maxCapture/2:]...)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	return len(b), nil
}

var _ io.Writer = (*Proc)(nil)

// PID is the child's process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Output returns what the child printed so far (the last MiB at most).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.buf)
}

// Tail returns the last n lines of the output.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited, and its wait error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Wait waits up to timeout for the child to exit by itself and returns its
// wait error; on timeout it kills the child and says so.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s (pid %d) still running after %v: killed", p.Name, p.PID(), timeout)
	}
}

// WaitOutput waits until the output contains substr, the child exits, or
// timeout passes.
func (p *Proc) WaitOutput(substr string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		found := bytes.Contains(p.buf, []byte(substr))
		changed := p.changed
		p.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before printing %q; last output:\n%s", p.Name, p.waitErr, substr, p.Tail(20))
		case <-deadline.C:
			return fmt.Errorf("%s did not print %q within %v; last output:\n%s", p.Name, substr, timeout, p.Tail(20))
		}
	}
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILLs and waits. It
// returns how long the child took to exit after SIGTERM and whether it
// needed SIGKILL. Stopping an exited child is a no-op.
func (p *Proc) Stop(timeout time.Duration) (took time.Duration, killed bool) {
	if ok, _ := p.Exited(); ok {
		return 0, false
	}
	start := time.Now()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), false
	case <-time.After(timeout):
		p.Kill()
		return time.Since(start), true
	}
}

// Signal sends sig to the child if it is still running.
func (p *Proc) Signal(sig os.Signal) error {
	if ok, _ := p.Exited(); ok {
		return nil
	}
	return p.Cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits (bounded) for the child to be reaped.
func (p *Proc) Kill() {
	if ok, _ := p.Exited(); ok {
		return
	}
	_ = p.Cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}
