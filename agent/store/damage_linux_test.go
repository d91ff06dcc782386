package store

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// platformCases are the damage cases that need Linux: a fifo in the
// file's place, a file the agent may not read, a read-only file system.
// As root the permission case cannot fail and is skipped; the read-only
// file system (a bind mount in a private mount namespace, which needs
// root) is the case that still fails for root.
func platformCases() []damageCase {
	root := os.Geteuid() == 0
	cases := []damageCase{
		{name: "fifo", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return everything
		}, moved: true},
		{name: "no permission", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			if err := os.Chmod(path, 0); err != nil {
				t.Fatal(err)
			}
			return nil
		}, fails: "permission denied"},
		{name: "read-only file system", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			truncate(t, path, 10<<10) // damaged, and still not to be touched
			return everything
		}, fails: "read-only file system", child: func(cmd *exec.Cmd, dir string) {
			cmd.Env = append(cmd.Env, envRO+"="+dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		}},
	}
	if root {
		cases[1].skip = "root reads any file; the read-only file system case fails for root instead"
	} else {
		cases[2].skip = "needs root for a private mount namespace; the permission case runs instead"
	}
	return cases
}

// remountReadOnly makes dir read-only for this process, which runs in a
// mount namespace of its own (Unshareflags above).
func remountReadOnly(dir string) error {
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		return err
	}
	return syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
}
