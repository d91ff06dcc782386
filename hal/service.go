package hal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// ErrRestartRequested, returned (possibly wrapped) by the function given to
// RunService, asks the service manager to start the agent again: used by
// the agent.restart and agent.update commands. Under a Windows service it
// becomes a service-specific exit code that the recovery actions restart;
// under systemd the unit's Restart=always does. In the foreground RunService
// returns it and the caller exits non-zero.
var ErrRestartRequested = errors.New("restart requested")

// ServiceConfig describes the service that InstallService registers.
type ServiceConfig struct {
	// Name is the Windows service name or the systemd unit name without
	// ".service". Default "camgate".
	Name string
	// DisplayName is shown in services.msc. Default "camgate edge agent".
	DisplayName string
	// Description is shown in services.msc and systemctl status.
	// Default: a one-line description of camgate.
	Description string
	// Executable is the absolute path of the binary to run. Default: the
	// running executable.
	Executable string
	// ConfigFile is handed to "run -c"; empty runs on the embedded defaults.
	// It is made absolute, since services do not start in the caller's
	// directory.
	ConfigFile string
	// User is the systemd unit's User=; default "camgate", created as a
	// system user when missing. Windows services run as LocalSystem.
	User string
}

// withDefaults fills zero values and makes paths absolute.
func (c ServiceConfig) withDefaults() (ServiceConfig, error) {
	if c.Name == "" {
		c.Name = "camgate"
	}
	if c.DisplayName == "" {
		c.DisplayName = "camgate edge agent"
	}
	if c.Description == "" {
		c.Description = "camgate: relays IP cameras over RTSP and WebRTC and reports to the fleet manager over MQTT"
	}
	if c.User == "" {
		c.User = "camgate"
	}
	if c.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("find own executable: %w", err)
		}
		c.Executable = exe
	}
	exe, err := filepath.Abs(c.Executable)
	if err != nil {
		return c, fmt.Errorf("resolve executable path: %w", err)
	}
	c.Executable = exe
	if c.ConfigFile != "" {
		cf, err := filepath.Abs(c.ConfigFile)
		if err != nil {
			return c, fmt.Errorf("resolve config path: %w", err)
		}
		c.ConfigFile = cf
	}
	return c, nil
}

// args is the command line the service manager starts the agent with.
func (c ServiceConfig) args() []string {
	if c.ConfigFile == "" {
		return []string{"run"}
	}
	return []string{"run", "-c", c.ConfigFile}
}

// ServiceState is what the service manager says about a service.
type ServiceState int

// Service states. Unknown is the zero value and means the manager reported
// something this package does not map (or was not asked).
const (
	ServiceUnknown ServiceState = iota
	ServiceNotInstalled
	ServiceStopped
	ServiceStarting
	ServiceRunning
	ServiceStopping
)

// String gives the state as `camgate service status` prints it.
func (s ServiceState) String() string {
	switch s {
	case ServiceNotInstalled:
		return "not installed"
	case ServiceStopped:
		return "stopped"
	case ServiceStarting:
		return "starting"
	case ServiceRunning:
		return "running"
	case ServiceStopping:
		return "stopping"
	default:
		return "unknown"
	}
}

// readyKey carries the run's readiness callback in the context RunService
// hands to run, so the agent can report readiness without hal exposing
// per-platform state.
type readyKey struct{}

// Ready tells the service manager that the agent is up (its listeners are
// open): systemd's READY=1 for a Type=notify unit, which also starts the
// watchdog pings. Call it with the context RunService passed to run; it is a
// no-op on other contexts, in the foreground and on Windows (which is told
// "running" at once, so that a stop request is accepted during start-up).
// Calling it more than once is harmless.
func Ready(ctx context.Context) {
	if f, ok := ctx.Value(readyKey{}).(func()); ok {
		f()
	}
}

// runWithSignals runs run with a context that SIGINT and SIGTERM cancel
// (Ctrl+C, `kill`, systemd's stop; Go maps console close events to SIGTERM
// on Windows). After the first signal the handlers are released, so a
// second one ends a stuck shutdown the default way. A run that ends with
// context.Canceled because of a signal is a clean stop: nil.
func runWithSignals(run func(ctx context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return cleanStop(ctx, run(ctx))
}

// cleanStop maps the error of a run stopped through ctx to nil: stopping is
// what was asked for.
func cleanStop(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
