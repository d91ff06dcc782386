//go:build linux

package hal

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var updateUnit = flag.Bool("update-unit", false, "rewrite packaging/camgate.service from the template")

// packagedUnit is the unit shipped in the .deb; it must be the template
// rendered for the package's paths, so `service install` and the package
// install the same hardening.
const packagedUnit = "../packaging/camgate.service"

func TestPackagedUnitMatchesTemplate(t *testing.T) {
	c, err := ServiceConfig{Executable: "/usr/bin/camgate", ConfigFile: "/etc/camgate/camgate.yml"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want, err := renderUnit(c)
	if err != nil {
		t.Fatal(err)
	}
	if *updateUnit {
		if err := os.WriteFile(packagedUnit, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(packagedUnit)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from the template; run go test ./hal -run PackagedUnit -update-unit\n--- file\n%s\n--- template\n%s", packagedUnit, got, want)
	}
	for _, key := range []string{"Type=notify", "User=camgate", "ProtectSystem=strict", "ReadWritePaths=/var/lib/camgate", "Restart=always", "WatchdogSec="} {
		if !strings.Contains(string(got), "\n"+key) {
			t.Errorf("unit lacks %s", key)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit rendered for an
// executable that exists (verify checks ExecStart's binary).
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ServiceConfig{Executable: exe, ConfigFile: "/etc/camgate/camgate.yml"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := renderUnit(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "camgate.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on some warnings; none is expected for our unit.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "camgate.service") {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
}

func TestQuoteUnitArg(t *testing.T) {
	cases := map[string]string{
		"/usr/bin/camgate":          "/usr/bin/camgate",
		"/opt/cam gate/camgate.yml": `"/opt/cam gate/camgate.yml"`,
		"/etc/camgate/100%.yml":     "/etc/camgate/100%%.yml",
		"/etc/$HOME.yml":            "/etc/$$HOME.yml",
	}
	for in, want := range cases {
		if got := quoteUnitArg(in); got != want {
			t.Errorf("quoteUnitArg(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeSystemd returns a systemd whose systemctl is a script that logs its
// arguments and answers `show` from the unit directory, and whose user
// creation is recorded.
func fakeSystemd(t *testing.T) (*systemd, func() string, *[]string) {
	t.Helper()
	dir := t.TempDir()
	unitDir := filepath.Join(dir, "units")
	if err := os.Mkdir(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "systemctl.log")
	script := `#!/bin/sh
echo "$*" >> "` + logFile + `"
if [ "$1" = show ]; then
  if [ -f "` + unitDir + `/$3" ]; then echo LoadState=loaded; echo ActiveState=inactive
  else echo LoadState=not-found; echo ActiveState=inactive; fi
fi
`
	systemctl := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(systemctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var users []string
	s := &systemd{bootedDir: dir, unitDir: unitDir, systemctl: systemctl, ensureUser: func(u string) error {
		users = append(users, u)
		return nil
	}}
	log := func() string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	}
	return s, log, &users
}

func TestSystemdInstallLifecycle(t *testing.T) {
	s, log, users := fakeSystemd(t)
	cfg := filepath.Join(t.TempDir(), "camgate.yml")
	if err := os.WriteFile(cfg, []byte("agent: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := ServiceConfig{Executable: "/usr/local/bin/camgate", ConfigFile: cfg}
	if err := s.install(c); err != nil {
		t.Fatalf("install: %v", err)
	}
	unit, err := os.ReadFile(filepath.Join(s.unitDir, "camgate.service"))
	if err != nil {
		t.Fatalf("unit not written: %v", err)
	}
	if want := "\nExecStart=/usr/local/bin/camgate run -c " + cfg + "\n"; !strings.Contains(string(unit), want) {
		t.Errorf("unit lacks %q:\n%s", want, unit)
	}
	if len(*users) != 1 || (*users)[0] != "camgate" {
		t.Errorf("service users created = %v, want [camgate]", *users)
	}
	if l := log(); !strings.Contains(l, "daemon-reload\nenable camgate.service\n") {
		t.Errorf("systemctl calls:\n%s", l)
	}

	if err := s.install(c); !errors.Is(err, ErrServiceExists) {
		t.Errorf("second install = %v, want ErrServiceExists", err)
	}
	if st, err := s.query("camgate"); err != nil || st != ServiceStopped {
		t.Errorf("query = %v, %v; want stopped", st, err)
	}
	if err := s.start("camgate"); err != nil {
		t.Errorf("start: %v", err)
	}
	if err := s.uninstall("camgate"); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.unitDir, "camgate.service")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unit still present after uninstall: %v", err)
	}
	if l := log(); !strings.Contains(l, "start camgate.service\n") || !strings.Contains(l, "disable --now camgate.service\n") {
		t.Errorf("systemctl calls:\n%s", l)
	}
	if st, err := s.query("camgate"); err != nil || st != ServiceNotInstalled {
		t.Errorf("query after uninstall = %v, %v; want not installed", st, err)
	}
	if err := s.stop("camgate"); !errors.Is(err, ErrServiceNotInstalled) {
		t.Errorf("stop after uninstall = %v, want ErrServiceNotInstalled", err)
	}
}

func TestSystemdInstallRefusesWhatTheUnitHides(t *testing.T) {
	s, _, _ := fakeSystemd(t)
	err := s.install(ServiceConfig{Executable: "/home/pi/camgate"})
	if err == nil || !strings.Contains(err.Error(), "ProtectHome") {
		t.Fatalf("install from /home = %v, want an error naming ProtectHome", err)
	}
	err = s.install(ServiceConfig{Executable: "/usr/local/bin/camgate", ConfigFile: "/nonexistent/camgate.yml"})
	if err == nil || !strings.Contains(err.Error(), "config file") {
		t.Fatalf("install with a missing config = %v, want an error naming the config file", err)
	}
}

func TestSystemctlErrorCarriesItsMessage(t *testing.T) {
	s := &systemd{bootedDir: t.TempDir(), systemctl: "sh"} // "sh show ..." fails with a message on stderr
	_, err := s.query("camgate")
	if err == nil || !strings.Contains(err.Error(), "query service: systemctl show") {
		t.Fatalf("query = %v", err)
	}
}

func TestReadyOutsideRunServiceIsNoop(t *testing.T) {
	Ready(context.Background()) // must not panic or block
}

func TestIsSystemService(t *testing.T) {
	env := func(id string) func(string) string {
		return func(k string) string {
			if k == "INVOCATION_ID" {
				return id
			}
			return ""
		}
	}
	cases := []struct {
		id   string
		ppid int
		want bool
	}{
		{"8f1c", 1, true},     // started by the system manager
		{"8f1c", 4242, false}, // a shell in a terminal that runs as a user unit
		{"", 1, false},        // reparented to init, not started by systemd
	}
	for _, c := range cases {
		if got := isSystemService(env(c.id), c.ppid); got != c.want {
			t.Errorf("INVOCATION_ID=%q ppid=%d: %v, want %v", c.id, c.ppid, got, c.want)
		}
	}
}

func TestSystemdNotBooted(t *testing.T) {
	s := &systemd{bootedDir: filepath.Join(t.TempDir(), "absent"), systemctl: "false"}
	if _, err := s.query("camgate"); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("query without systemd = %v, want ErrNotSupported", err)
	}
	if err := s.install(ServiceConfig{Executable: "/usr/local/bin/camgate"}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("install without systemd = %v, want ErrNotSupported", err)
	}
}

// TestRunServiceStopsOnSIGTERM sends the process the signal systemd sends
// on stop: the run's context is cancelled and the stop is clean.
func TestRunServiceStopsOnSIGTERM(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	err := RunService("camgate", func(ctx context.Context) error {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("context not cancelled 10 s after SIGTERM")
		}
	})
	if err != nil {
		t.Fatalf("RunService = %v, want a clean stop", err)
	}
}

func TestRunServiceReturnsRunError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	err := RunService("camgate", func(ctx context.Context) error {
		return fmt.Errorf("agent.restart: %w", ErrRestartRequested)
	})
	if !errors.Is(err, ErrRestartRequested) {
		t.Fatalf("RunService = %v, want the run's ErrRestartRequested", err)
	}
}

func TestUnitRefusesFieldsSpanningLines(t *testing.T) {
	c, err := ServiceConfig{Executable: "/usr/bin/camgate", ConfigFile: "/etc/camgate/camgate.yml"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c.Description = "camgate\nExecStartPre=/bin/sh -c reboot"
	if unit, err := renderUnit(c); err == nil || !strings.Contains(err.Error(), "description") {
		t.Fatalf("renderUnit = %v\n%s", err, unit)
	}
}
