//go:build linux || windows

package hal

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestHelperSleeper is not a test: run as a child with HAL_TEST_SLEEP=1 it
// stands in for a candidate binary that keeps running.
func TestHelperSleeper(t *testing.T) {
	if os.Getenv("HAL_TEST_SLEEP") != "1" {
		t.Skip("helper process")
	}
	time.Sleep(60 * time.Second)
	os.Exit(0)
}

// sleeper starts a copy of the test binary at path that sleeps.
func sleeper(t *testing.T, path string, start func(*exec.Cmd) error) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-test.run=^TestHelperSleeper$")
	cmd.Env = append(os.Environ(), "HAL_TEST_SLEEP=1")
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// exeDir is a directory for executables that the test removes as far as
// it can: Wine may refuse to delete a file that ran a moment ago.
func exeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hal-update-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func waitExit(t *testing.T, cmd *exec.Cmd, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%s: the child still runs", what)
	}
}

// TestTrialChildKillTree: a candidate started for a trial dies with
// KillTree.
func TestTrialChildKillTree(t *testing.T) {
	var child *TrialChild
	cmd := sleeper(t, filepath.Join(exeDir(t), ExecutableName()), func(c *exec.Cmd) (err error) {
		child, err = StartTrialChild(c)
		return err
	})
	defer child.Release()
	if err := child.KillTree(); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, "after KillTree")
}
