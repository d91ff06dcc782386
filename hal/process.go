package hal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/kballard/go-shellquote"
)

// ProcessSpec describes a command line to start as a process tree
// (runOnInit, runOnDemand).
type ProcessSpec struct {
	// Line is the command line. It is split into words as a POSIX shell
	// would (quotes, backslash escapes; no globbing, pipes or
	// redirections: wrap those in "sh -c '...'") and run without a shell.
	// On Windows a line starting with "cmd " or "cmd.exe " goes to cmd.exe
	// as typed, so cmd's own syntax works. These are MediaMTX's rules, so
	// its documented command lines work unchanged.
	Line string
	// Vars are added to the process's environment on top of the agent's
	// and replace $NAME and ${NAME} in the line (after the split, as
	// MediaMTX does); a name not in Vars takes the agent's environment.
	Vars map[string]string
	// Output receives what every process of the tree writes to stdout and
	// stderr; nil discards it.
	Output io.Writer
}

// ProcessTree is a started command and every process it starts. Stop
// ends them all: on Linux and other Unix systems the command leads a
// process group of its own; on Windows it is in a job object.
type ProcessTree struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the main process has exited
	err    error         // its exit status, set before exited closes
	out    *os.File      // read end of the output pipe
	copied chan struct{} // closed once the output pipe is drained
	// kill ends every process of the tree (per OS, set by start).
	kill func(grace time.Duration)

	stopOnce sync.Once
}

// ErrEmptyCommand is returned for a command line with no words.
var ErrEmptyCommand = errors.New("empty command line")

// CheckCommandLine tells whether StartProcessTree can split line (a
// quote left open cannot). It does not look for the program, which may be
// installed later.
func CheckCommandLine(line string) error {
	_, err := command(line, func(string) string { return "" })
	if errors.Is(err, ErrNotSupported) {
		return nil // refused when started, with the reason logged
	}
	return err
}

// splitLine splits line into words and expands $NAME in each.
func splitLine(line string, expand func(string) string) ([]string, error) {
	words, err := shellquote.Split(line)
	if err != nil {
		return nil, fmt.Errorf("command line: %w", err)
	}
	if len(words) == 0 {
		return nil, ErrEmptyCommand
	}
	for i, w := range words {
		words[i] = os.Expand(w, expand)
	}
	return words, nil
}

// StartProcessTree starts s.Line. The caller must call Stop, also after
// the main process exited by itself (its children may live on).
func StartProcessTree(s ProcessSpec) (*ProcessTree, error) {
	expand := func(name string) string {
		if v, ok := s.Vars[name]; ok {
			return v
		}
		return os.Getenv(name)
	}
	cmd, err := command(s.Line, expand)
	if err != nil {
		return nil, err
	}
	cmd.Env = os.Environ()
	names := make([]string, 0, len(s.Vars))
	for k := range s.Vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		cmd.Env = append(cmd.Env, k+"="+s.Vars[k])
	}
	// One pipe for stdout and stderr, read here: exec's own copying would
	// make Wait wait for grandchildren holding the pipe.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: output pipe: %w", cmd.Args[0], err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	t := &ProcessTree{cmd: cmd, exited: make(chan struct{}), out: r, copied: make(chan struct{})}
	err = t.start()
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	out := s.Output
	if out == nil {
		out = io.Discard
	}
	go func() {
		defer close(t.copied)
		_, _ = io.Copy(out, r)
	}()
	go func() {
		t.err = cmd.Wait()
		close(t.exited)
	}()
	return t, nil
}

// Pid is the main process's id.
func (t *ProcessTree) Pid() int { return t.cmd.Process.Pid }

// Exited is closed once the main process has exited (by itself or by Stop).
func (t *ProcessTree) Exited() <-chan struct{} { return t.exited }

// Err is the main process's exit status once Exited is closed: nil for
// exit code 0, an *exec.ExitError otherwise.
func (t *ProcessTree) Err() error {
	<-t.exited
	return t.err
}

// outputLinger is how long Stop keeps reading output after the tree is
// gone: a process that left the tree (a daemon) may hold the pipe open.
const outputLinger = time.Second

// Stop ends every process of the tree and waits for the main one. On Unix
// the group gets SIGTERM, and SIGKILL after grace if any member is left;
// on Windows the job is terminated at once (a process without a console
// cannot be asked to stop politely). It is safe to call more than once.
func (t *ProcessTree) Stop(grace time.Duration) {
	t.stopOnce.Do(func() {
		t.kill(grace)
		<-t.exited
		select {
		case <-t.copied:
		case <-time.After(outputLinger):
		}
		_ = t.out.Close()
		<-t.copied
	})
}
