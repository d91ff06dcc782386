//go:build windows

package hal

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSwapExecutableWhileRunning renames a running executable aside and
// puts another file at its path, as an update's commit does on Windows.
func TestSwapExecutableWhileRunning(t *testing.T) {
	dir := exeDir(t)
	target := filepath.Join(dir, "camgate.exe")
	cmd := sleeper(t, target, func(c *exec.Cmd) error { return c.Start() })
	defer func() { _ = cmd.Process.Kill() }()
	running, _ := os.ReadFile(target)
	staged := filepath.Join(dir, "camgate.new.exe")
	newer := []byte("MZ the new release")
	if err := os.WriteFile(staged, newer, 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "camgate.old.exe")
	if err := SwapExecutable(target, staged, old); err != nil {
		t.Fatalf("swap with the target running: %v", err)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, newer) {
		t.Fatal("target does not hold the new file")
	}
	if b, _ := os.ReadFile(old); !bytes.Equal(b, running) {
		t.Fatal("the running executable was not kept as .old")
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Fatalf("staged file still there: %v", err)
	}
	// The service restarts (the old process ends); a second update drops
	// the old .old and keeps the one it replaces.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := os.WriteFile(staged, []byte("MZ third"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SwapExecutable(target, staged, old); err != nil {
		t.Fatalf("second swap: %v", err)
	}
	if b, _ := os.ReadFile(old); !bytes.Equal(b, newer) {
		t.Fatal("second swap did not keep the previous file")
	}
}

// TestTrialChildDiesWithJob: closing the job object (what happens when the
// agent dies) kills the candidate.
func TestTrialChildDiesWithJob(t *testing.T) {
	var child *TrialChild
	cmd := sleeper(t, filepath.Join(exeDir(t), ExecutableName()), func(c *exec.Cmd) (err error) {
		child, err = StartTrialChild(c)
		return err
	})
	child.Release()
	waitExit(t, cmd, "after the job handle closed")
}

// A hand-over whose start fails (the new executable briefly held by a
// scanner) is tried again; one that keeps failing reports the cause.
func TestHandoverRetriesStart(t *testing.T) {
	defer func(b time.Duration, s func(*exec.Cmd) error) { handoverBackoff, startProcess = b, s }(handoverBackoff, startProcess)
	handoverBackoff = time.Millisecond
	held := errors.New("the file is held")
	calls := 0
	startProcess = func(c *exec.Cmd) error {
		calls++
		if calls < 3 {
			return held
		}
		return c.Start()
	}
	// The test binary, asked to run no test, starts and exits at once.
	if err := Handover(os.Args[0], []string{"-test.run=^$"}, os.Environ()); err != nil {
		t.Fatalf("Handover after two failed starts: %v", err)
	}
	if calls != 3 {
		t.Errorf("%d starts, want 3", calls)
	}

	calls = 0
	startProcess = func(*exec.Cmd) error { calls++; return held }
	err := Handover(os.Args[0], nil, os.Environ())
	if !errors.Is(err, held) || calls != handoverAttempts {
		t.Errorf("Handover that never starts: %v after %d starts, want %v after %d", err, calls, held, handoverAttempts)
	}
}
