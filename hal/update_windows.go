//go:build windows

package hal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

const (
	updateInPlace = true
	exeName       = "camgate.exe"
)

type trialSys struct {
	job windows.Handle
}

func startTrialChild(cmd *exec.Cmd) (*TrialChild, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("start trial child: create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return nil, fmt.Errorf("start trial child: job object limits: %w", err)
	}
	if err := cmd.Start(); err != nil {
		windows.CloseHandle(job)
		return nil, fmt.Errorf("start trial child: %w", err)
	}
	// The child is assigned right after it started: camgate starts no
	// processes of its own that early, so none escapes the job.
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid))
	if err == nil {
		err = windows.AssignProcessToJobObject(job, h)
		windows.CloseHandle(h)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		windows.CloseHandle(job)
		return nil, fmt.Errorf("start trial child: assign to job object: %w", err)
	}
	return &TrialChild{Cmd: cmd, sys: trialSys{job: job}}, nil
}

func (c *TrialChild) killTree() error {
	if c.sys.job == 0 {
		return nil
	}
	if err := windows.TerminateJobObject(c.sys.job, 1); err != nil {
		return fmt.Errorf("kill trial child: %w", err)
	}
	return nil
}

func (c *TrialChild) release() {
	if c.sys.job != 0 {
		windows.CloseHandle(c.sys.job)
		c.sys.job = 0
	}
}

// Handover makes exe, now at the path of the service's executable, take
// over. Under the service manager it returns ErrRestartRequested: the
// service exits with its restart code and the recovery actions start the
// new binary. In the foreground it starts exe with this process's console
// and standard streams and returns nil once it runs; the caller exits.
//
// A start that fails is tried again a few times over about 2.5 s: a
// freshly renamed executable may be held for a moment by a virus scanner
// or the indexer, and process creation fails meanwhile.
func Handover(exe string, args, env []string) error {
	if IsService() {
		return fmt.Errorf("hand over to %s: %w", exe, ErrRestartRequested)
	}
	var err error
	for attempt := range handoverAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * handoverBackoff)
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = env
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err = startProcess(cmd); err == nil {
			return cmd.Process.Release()
		}
	}
	return fmt.Errorf("hand over to %s (%d attempts): %w", exe, handoverAttempts, err)
}

// Handover's retries: waits of 1, 2, 3 and 4 × handoverBackoff.
const handoverAttempts = 5

var (
	handoverBackoff = 250 * time.Millisecond
	startProcess    = (*exec.Cmd).Start // tests fail it
)

// SwapExecutable puts staged at target, keeping target's file as old: the
// running executable cannot be replaced or deleted on Windows, but it can
// be renamed. The two renames are not one atomic step; agent/update
// records the swap before and after and resolves an interrupted one by
// the files' hashes at the next start.
func SwapExecutable(target, staged, old string) error {
	if err := os.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("swap executable: remove %s: %w", old, err)
	}
	if err := os.Rename(target, old); err != nil {
		return fmt.Errorf("swap executable: rename running %s aside: %w", target, err)
	}
	if err := os.Rename(staged, target); err != nil {
		// Put the running one back so the service still has a binary.
		if rerr := os.Rename(old, target); rerr != nil {
			return fmt.Errorf("swap executable: %w (and restoring %s: %v)", err, target, rerr)
		}
		return fmt.Errorf("swap executable: %w", err)
	}
	return nil
}
