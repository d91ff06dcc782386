package hal

import "errors"

// ErrNotSupported is returned where the platform offers no such facility,
// for example a machine without /etc/machine-id, temperatures on Windows, or
// the event log on Linux. Callers omit the figure or fall back.
var ErrNotSupported = errors.New("not supported on this platform")

// ErrServiceExists is returned by InstallService when a service or unit of
// that name is already registered; uninstall it first.
var ErrServiceExists = errors.New("service already installed")

// ErrServiceNotInstalled is returned by UninstallService, StartService and
// StopService when no service or unit of that name is registered.
var ErrServiceNotInstalled = errors.New("service not installed")
