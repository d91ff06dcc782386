//go:build unix

package hal

import (
	"os/exec"
	"syscall"
	"time"
)

func command(line string, expand func(string) string) (*exec.Cmd, error) {
	words, err := splitLine(line, expand)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(words[0], words[1:]...)
	// A process group of its own: Stop signals every member, the
	// command's children and theirs too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

func (t *ProcessTree) start() error {
	if err := t.cmd.Start(); err != nil {
		return err
	}
	pgid := t.cmd.Process.Pid
	t.kill = func(grace time.Duration) { killGroup(pgid, grace) }
	return nil
}

// killPoll is how often kill looks whether the group is gone.
const killPoll = 20 * time.Millisecond

func killGroup(pgid int, grace time.Duration) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	tick := time.NewTicker(killPoll)
	defer tick.Stop()
	for groupAlive(pgid) && time.Now().Before(deadline) {
		<-tick.C
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive tells whether any process of the group is left (a zombie not
// yet reaped counts).
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}
