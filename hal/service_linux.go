//go:build linux

package hal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
)

// IsService reports whether systemd started this process as a system
// service; the agent then uses the system directories. systemd sets
// $INVOCATION_ID for every unit it runs (since v232), but desktop
// terminals run as user units and pass it on to their shells, so the
// parent must also be PID 1, the system manager.
func IsService() bool {
	return isSystemService(os.Getenv, os.Getppid())
}

func isSystemService(getenv func(string) string, ppid int) bool {
	return getenv("INVOCATION_ID") != "" && ppid == 1
}

// RunService runs run until it returns or SIGINT/SIGTERM (systemd's stop)
// cancels its context, keeping systemd informed when started by a
// Type=notify unit: READY=1 on Ready, WATCHDOG=1 pings, STOPPING=1. The
// name is not used on Linux (the unit names itself). A stop requested
// through the context is a clean stop and returns nil; any other error of
// run is returned.
func RunService(name string, run func(ctx context.Context) error) error {
	n := newNotifier(os.Getenv)
	interval := watchdogInterval(os.Getenv, os.Getpid())
	return runWithSignals(func(ctx context.Context) error {
		return n.supervise(ctx, interval, run)
	})
}

// InstallService writes the systemd unit for c to /etc/systemd/system,
// creates the service user when missing and enables the unit (it starts
// at boot; StartService starts it now). Needs root.
func InstallService(c ServiceConfig) error { return defaultSystemd().install(c) }

// UninstallService stops and disables the unit and removes its file.
func UninstallService(name string) error { return defaultSystemd().uninstall(name) }

// StartService starts the unit now.
func StartService(name string) error { return defaultSystemd().start(name) }

// StopService stops the unit; systemd waits for the graceful shutdown.
func StopService(name string) error { return defaultSystemd().stop(name) }

// QueryService reports the unit's state.
func QueryService(name string) (ServiceState, error) { return defaultSystemd().query(name) }

// systemd manages units through systemctl: systemd's supported interface
// besides D-Bus, whose client library the agent would carry for five calls.
type systemd struct {
	bootedDir  string                  // exists when systemd is the init system; /run/systemd/system
	unitDir    string                  // where install writes units; /etc/systemd/system
	systemctl  string                  // the systemctl binary
	ensureUser func(name string) error // creates the service user when missing
}

func defaultSystemd() *systemd {
	return &systemd{bootedDir: "/run/systemd/system", unitDir: "/etc/systemd/system", systemctl: "systemctl", ensureUser: ensureSystemUser}
}

func (s *systemd) unitPath(name string) string {
	return filepath.Join(s.unitDir, unitName(name))
}

func unitName(name string) string {
	if name == "" {
		name = "camgate"
	}
	return name + ".service"
}

func (s *systemd) install(c ServiceConfig) error {
	c, err := c.withDefaults()
	if err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	for _, p := range []string{c.Executable, c.ConfigFile} {
		if underHome(p) {
			return fmt.Errorf("install service: %s is under /home or /root, which the hardened unit hides (ProtectHome=yes); put the binary in /usr/local/bin and the config in /etc/camgate", p)
		}
	}
	if c.ConfigFile != "" {
		if _, err := os.Stat(c.ConfigFile); err != nil {
			return fmt.Errorf("install service: config file: %w", err)
		}
	}
	st, err := s.query(c.Name)
	if err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	if st != ServiceNotInstalled {
		return fmt.Errorf("install service %s: %w", c.Name, ErrServiceExists)
	}
	unit, err := renderUnit(c)
	if err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	if err := s.ensureUser(c.User); err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	if err := os.WriteFile(s.unitPath(c.Name), unit, 0o644); err != nil {
		return fmt.Errorf("install service: write unit: %w", err)
	}
	if err := s.run("daemon-reload"); err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	if err := s.run("enable", unitName(c.Name)); err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	return nil
}

func (s *systemd) uninstall(name string) error {
	if err := s.mustExist(name); err != nil {
		return fmt.Errorf("uninstall service: %w", err)
	}
	path := s.unitPath(name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("uninstall service: %s was not installed by camgate service install (a package owns it?): remove the package instead", unitName(name))
	}
	if err := s.run("disable", "--now", unitName(name)); err != nil {
		return fmt.Errorf("uninstall service: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("uninstall service: remove unit: %w", err)
	}
	if err := s.run("daemon-reload"); err != nil {
		return fmt.Errorf("uninstall service: %w", err)
	}
	return nil
}

func (s *systemd) start(name string) error {
	if err := s.mustExist(name); err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	if err := s.run("start", unitName(name)); err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	return nil
}

func (s *systemd) stop(name string) error {
	if err := s.mustExist(name); err != nil {
		return fmt.Errorf("stop service: %w", err)
	}
	if err := s.run("stop", unitName(name)); err != nil {
		return fmt.Errorf("stop service: %w", err)
	}
	return nil
}

func (s *systemd) mustExist(name string) error {
	st, err := s.query(name)
	if err != nil {
		return err
	}
	if st == ServiceNotInstalled {
		return fmt.Errorf("%s: %w", unitName(name), ErrServiceNotInstalled)
	}
	return nil
}

// query maps `systemctl show`'s LoadState and ActiveState. It finds units
// installed by packages (under /usr/lib/systemd/system) as well.
func (s *systemd) query(name string) (ServiceState, error) {
	// sd_booted(3): without this directory systemctl can only fail, and
	// says so less plainly (containers, other init systems).
	if _, err := os.Stat(s.bootedDir); err != nil {
		return ServiceUnknown, fmt.Errorf("query service: systemd is not the init system here: %w", ErrNotSupported)
	}
	out, err := s.output("show", "--property=LoadState,ActiveState", unitName(name))
	if err != nil {
		return ServiceUnknown, fmt.Errorf("query service: %w", err)
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			props[k] = v
		}
	}
	if props["LoadState"] == "not-found" {
		return ServiceNotInstalled, nil
	}
	switch props["ActiveState"] {
	case "active", "reloading":
		return ServiceRunning, nil
	case "activating":
		return ServiceStarting, nil
	case "deactivating":
		return ServiceStopping, nil
	case "inactive", "failed":
		return ServiceStopped, nil
	}
	return ServiceUnknown, nil
}

func (s *systemd) run(args ...string) error {
	_, err := s.output(args...)
	return err
}

// output runs systemctl and puts its stderr into the error: "System has
// not been booted with systemd" or "Access denied" is the useful part.
func (s *systemd) output(args ...string) ([]byte, error) {
	cmd := exec.Command(s.systemctl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
		}
		return nil, fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// ensureSystemUser creates a system user and group without a login shell
// or home directory (systemd's StateDirectory= makes /var/lib/camgate).
func ensureSystemUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
		"--home-dir", "/var/lib/camgate", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create user %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func underHome(p string) bool {
	return p == "/root" || strings.HasPrefix(p, "/root/") || p == "/home" || strings.HasPrefix(p, "/home/")
}
