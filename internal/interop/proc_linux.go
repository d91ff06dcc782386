package interop

import (
	"os/exec"
	"syscall"
)

// setProcAttr has the kernel SIGKILL the child when the thread that started
// it dies, so an interrupted test run leaves no camera or agent behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
