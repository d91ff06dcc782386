//go:build linux

package hal

import (
	"fmt"
	"os/exec"
	"syscall"
)

const (
	updateInPlace = false
	exeName       = "camgate"
)

// trialSys is the candidate's process group (its own PID).
type trialSys struct {
	pgid int
}

func startTrialChild(cmd *exec.Cmd) (*TrialChild, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Pdeathsig follows the thread that forked, which the Go runtime keeps
	// (threads only end with a goroutine locked to them).
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start trial child: %w", err)
	}
	return &TrialChild{Cmd: cmd, sys: trialSys{pgid: cmd.Process.Pid}}, nil
}

func (c *TrialChild) killTree() error {
	if c.sys.pgid <= 0 {
		return nil
	}
	// The child leads its own group: kill it and whatever it started.
	if err := syscall.Kill(-c.sys.pgid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill trial child: %w", err)
	}
	return nil
}

func (c *TrialChild) release() {}

// Handover replaces this process by exe with args and env (execve): the
// PID stays, which systemd's Type=notify (NotifyAccess=main) and its
// watchdog rely on. It returns only when the exec failed.
func Handover(exe string, args, env []string) error {
	argv := append([]string{exe}, args...)
	if err := syscall.Exec(exe, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", exe, err)
	}
	return nil
}

// SwapExecutable is not used on Linux: updates live under the data
// directory (UpdateInPlace is false).
func SwapExecutable(target, staged, old string) error {
	return fmt.Errorf("swap executable: %w", ErrNotSupported)
}
