package hal

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

func command(line string, expand func(string) string) (*exec.Cmd, error) {
	for _, p := range []string{"cmd ", "cmd.exe "} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			// cmd.exe parses its command line its own way: hand it over as
			// typed (variables expanded), not split and re-quoted.
			cmd := exec.Command("cmd.exe")
			cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: "cmd.exe " + os.Expand(rest, expand)}
			return cmd, nil
		}
	}
	words, err := splitLine(line, expand)
	if err != nil {
		return nil, err
	}
	return exec.Command(words[0], words[1:]...), nil
}

// start starts the command in a job object that kills every process in
// it when its handle is closed. A child started in the instant between
// Start and the assignment is not in the job (MediaMTX has the same gap).
func (t *ProcessTree) start() error {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return fmt.Errorf("create job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return fmt.Errorf("set up job object: %w", err)
	}
	if err := t.cmd.Start(); err != nil {
		_ = windows.CloseHandle(job)
		return err
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(t.cmd.Process.Pid))
	if err == nil {
		err = windows.AssignProcessToJobObject(job, h)
		_ = windows.CloseHandle(h)
	}
	if err != nil {
		_ = t.cmd.Process.Kill()
		_ = t.cmd.Wait()
		_ = windows.CloseHandle(job)
		return fmt.Errorf("assign to job object: %w", err)
	}
	t.kill = func(time.Duration) {
		_ = windows.TerminateJobObject(job, 1)
		_ = windows.CloseHandle(job)
	}
	return nil
}
