//go:build !linux && !windows

package hal

import (
	"context"
	"fmt"
)

// IsService is false: no service manager integration on this platform.
func IsService() bool { return false }

// RunService runs run in the foreground until SIGINT or SIGTERM.
func RunService(name string, run func(ctx context.Context) error) error {
	return runWithSignals(run)
}

// InstallService returns ErrNotSupported.
func InstallService(c ServiceConfig) error {
	return fmt.Errorf("install service: %w", ErrNotSupported)
}

// UninstallService returns ErrNotSupported.
func UninstallService(name string) error {
	return fmt.Errorf("uninstall service: %w", ErrNotSupported)
}

// StartService returns ErrNotSupported.
func StartService(name string) error {
	return fmt.Errorf("start service: %w", ErrNotSupported)
}

// StopService returns ErrNotSupported.
func StopService(name string) error {
	return fmt.Errorf("stop service: %w", ErrNotSupported)
}

// QueryService returns ErrNotSupported.
func QueryService(name string) (ServiceState, error) {
	return ServiceUnknown, fmt.Errorf("query service: %w", ErrNotSupported)
}
