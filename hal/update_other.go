//go:build !linux && !windows

package hal

import (
	"fmt"
	"os/exec"
)

const (
	updateInPlace = false
	exeName       = "camgate"
)

type trialSys struct{}

// startTrialChild returns ErrNotSupported: without a parent-death signal
// a candidate could outlive the agent that supervises it.
func startTrialChild(cmd *exec.Cmd) (*TrialChild, error) {
	return nil, fmt.Errorf("start trial child: %w", ErrNotSupported)
}

func (c *TrialChild) killTree() error { return nil }

func (c *TrialChild) release() {}

// Handover returns ErrNotSupported.
func Handover(exe string, args, env []string) error {
	return fmt.Errorf("hand over to %s: %w", exe, ErrNotSupported)
}

// SwapExecutable returns ErrNotSupported.
func SwapExecutable(target, staged, old string) error {
	return fmt.Errorf("swap executable: %w", ErrNotSupported)
}
