//go:build windows

package hal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// Exit codes the service reports to the service control manager. Any
// non-zero service-specific code counts as a failure, which the recovery
// actions (with "also on non-crash failures" set) answer with a restart.
const (
	exitFailed  = 1 // run returned an error
	exitRestart = 2 // run returned ErrRestartRequested
)

// Timings of the service, shared by install and run.
const (
	// stopWait bounds how long stop and uninstall wait for the agent to
	// stop; the agent itself stops within 5 s.
	stopWait = 20 * time.Second
	// preShutdownTimeout is how long Windows waits at shutdown for the
	// agent to close bbolt before it moves on.
	preShutdownTimeout = 15 * time.Second
)

// recoveryActions restart the agent 5 s after a first failure, 30 s after a
// second and 60 s after any further one; the count resets after a day
// without failure.
var recoveryActions = []mgr.RecoveryAction{
	{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
}

const recoveryResetSeconds = 24 * 60 * 60

// IsService reports whether the service control manager started this process.
func IsService() bool {
	if ok, err := svc.IsWindowsService(); err == nil && ok {
		return true
	}
	return parentIsServicesExe()
}

// parentIsServicesExe reports whether the parent process is services.exe.
// svc.IsWindowsService also requires session 0, where Windows runs its
// service manager; Wine's runs in session 1, and the cross-platform smoke
// test runs the agent as a service under Wine. A false positive is
// harmless: svc.Run then fails at once and RunService runs in the
// foreground.
func parentIsServicesExe() bool {
	ppid := uint32(os.Getppid())
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return false
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == ppid {
			return strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), "services.exe")
		}
	}
	return false
}

// RunService runs run as the Windows service name when the service control
// manager started the process, and in the foreground otherwise. Stop,
// Shutdown and PreShutdown requests cancel run's context; pre-shutdown
// comes early at system shutdown, so bbolt closes before the disk goes
// away. Start, stop and a failure of run are written to the event log
// under name. A stop requested through the context is a clean stop and
// returns nil; any other error of run is returned (and reported to the
// service manager as a failure, so recovery restarts the agent).
func RunService(name string, run func(ctx context.Context) error) error {
	if !IsService() {
		return runWithSignals(run)
	}
	var elog EventLog = nopEventLog{}
	if l, err := OpenEventLog(name); err == nil {
		elog = l
		defer l.Close()
	}
	h := &serviceHandler{name: name, run: run, elog: elog}
	err := svc.Run(name, h)
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		// No service manager is waiting for us after all (see IsService).
		return runWithSignals(run)
	}
	if err != nil {
		_ = elog.Error(fmt.Sprintf("%s: service dispatcher failed: %v", name, err))
		return fmt.Errorf("run service %s: %w", name, err)
	}
	return h.err
}

// serviceHandler turns service control requests into context
// cancellation and run's result into the service's exit code.
type serviceHandler struct {
	name string
	run  func(ctx context.Context) error
	elog EventLog
	err  error // run's result, read by RunService after svc.Run returns
}

const accepted = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown

// Execute reports Running at once so that a stop request is accepted
// while the agent is still starting. The control channel is read until
// run returns: the service control manager's thread blocks on it.
func (h *serviceHandler) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 10000}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: accepted}
	_ = h.elog.Info(h.name + " started")

	var checkpoint uint32
	var tick <-chan time.Time // progress reports while stopping
	for {
		select {
		case err := <-done:
			return h.finish(ctx, err)
		case <-tick:
			checkpoint++
			status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: 5000}
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown, svc.PreShutdown:
				if ctx.Err() == nil {
					status <- svc.Status{State: svc.StopPending, WaitHint: 10000}
					cancel()
					t := time.NewTicker(2 * time.Second)
					defer t.Stop()
					tick = t.C
				}
			}
		}
	}
}

// finish logs how run ended and picks the exit code.
func (h *serviceHandler) finish(ctx context.Context, err error) (bool, uint32) {
	h.err = cleanStop(ctx, err)
	switch {
	case h.err == nil:
		_ = h.elog.Info(h.name + " stopped")
		return false, 0
	case errors.Is(h.err, ErrRestartRequested):
		_ = h.elog.Info(h.name + " exits to be restarted: " + h.err.Error())
		return true, exitRestart
	default:
		_ = h.elog.Error(h.name + " failed: " + h.err.Error())
		return true, exitFailed
	}
}

// InstallService registers c as an automatically starting service running
// as LocalSystem, with staged restarts on failure (also on non-crash
// failures: an error exit) and a pre-shutdown timeout, and registers the
// event log source. Needs an elevated prompt.
func InstallService(c ServiceConfig) (err error) {
	c, err = c.withDefaults()
	if err != nil {
		return fmt.Errorf("install service: %w", err)
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("install service: connect to service manager: %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(c.Name); err == nil {
		s.Close()
		return fmt.Errorf("install service %s: %w", c.Name, ErrServiceExists)
	}
	s, err := m.CreateService(c.Name, c.Executable, mgr.Config{
		DisplayName:  c.DisplayName,
		Description:  c.Description,
		StartType:    mgr.StartAutomatic,
		ErrorControl: mgr.ErrorNormal,
	}, c.args()...)
	if err != nil {
		return fmt.Errorf("install service: create %s: %w", c.Name, err)
	}
	defer s.Close()
	// A half-configured service would not restart; remove it on failure.
	defer func() {
		if err != nil {
			_ = s.Delete()
		}
	}()
	if err := s.SetRecoveryActions(recoveryActions, recoveryResetSeconds); err != nil {
		return fmt.Errorf("install service: set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("install service: set recovery on non-crash failures: %w", err)
	}
	if err := setPreShutdownTimeout(s, preShutdownTimeout); err != nil {
		return fmt.Errorf("install service: set pre-shutdown timeout: %w", err)
	}
	err = eventlog.InstallAsEventCreate(c.Name, eventlog.Error|eventlog.Warning|eventlog.Info)
	if err != nil && !strings.Contains(err.Error(), "registry key already exists") {
		return fmt.Errorf("install service: register event log source: %w", err)
	}
	return nil
}

// setPreShutdownTimeout sets SERVICE_PRESHUTDOWN_INFO, which x/sys/windows
// has no type for: the structure is a single DWORD of milliseconds.
func setPreShutdownTimeout(s *mgr.Service, d time.Duration) error {
	info := struct{ timeoutMillis uint32 }{uint32(d.Milliseconds())}
	return windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info)))
}

// UninstallService stops the service if it runs, deletes it and removes
// its event log source.
func UninstallService(name string) error {
	m, s, err := openService(name)
	if err != nil {
		return fmt.Errorf("uninstall service: %w", err)
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return fmt.Errorf("uninstall service: %w", err)
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("uninstall service: delete %s: %w", name, err)
	}
	_ = eventlog.Remove(name) // absent when the registration had failed
	return nil
}

// StartService asks the service control manager to start the service.
func StartService(name string) error {
	m, s, err := openService(name)
	if err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("start service %s: %w", name, err)
	}
	return nil
}

// StopService asks the service to stop and waits until it has.
func StopService(name string) error {
	m, s, err := openService(name)
	if err != nil {
		return fmt.Errorf("stop service: %w", err)
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return fmt.Errorf("stop service: %w", err)
	}
	return nil
}

// QueryService reports the service's state.
func QueryService(name string) (ServiceState, error) {
	m, s, err := openService(name)
	if errors.Is(err, ErrServiceNotInstalled) {
		return ServiceNotInstalled, nil
	}
	if err != nil {
		return ServiceUnknown, fmt.Errorf("query service: %w", err)
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return ServiceUnknown, fmt.Errorf("query service %s: %w", name, err)
	}
	switch st.State {
	case svc.Stopped:
		return ServiceStopped, nil
	case svc.StartPending:
		return ServiceStarting, nil
	case svc.Running:
		return ServiceRunning, nil
	case svc.StopPending:
		return ServiceStopping, nil
	}
	return ServiceUnknown, nil
}

func openService(name string) (*mgr.Mgr, *mgr.Service, error) {
	if name == "" {
		name = "camgate"
	}
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to service manager: %w", err)
	}
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		m.Disconnect()
		return nil, nil, fmt.Errorf("%s: %w", name, ErrServiceNotInstalled)
	}
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("open %s: %w", name, err)
	}
	return m, s, nil
}

// stopAndWait sends Stop unless the service is already stopped and polls
// until it is: the service control manager offers no wait call.
func stopAndWait(s *mgr.Service) error {
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("query %s: %w", s.Name, err)
	}
	if st.State == svc.Stopped {
		return nil
	}
	if st.State != svc.StopPending {
		if _, err := s.Control(svc.Stop); err != nil {
			return fmt.Errorf("send stop to %s: %w", s.Name, err)
		}
	}
	deadline := time.Now().Add(stopWait)
	for time.Now().Before(deadline) {
		st, err = s.Query()
		if err != nil {
			return fmt.Errorf("query %s: %w", s.Name, err)
		}
		if st.State == svc.Stopped {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("%s did not stop within %v", s.Name, stopWait)
}

// nopEventLog stands in when the event log cannot be opened: missing the
// event log must not stop the service.
type nopEventLog struct{}

func (nopEventLog) Info(string) error    { return nil }
func (nopEventLog) Warning(string) error { return nil }
func (nopEventLog) Error(string) error   { return nil }
func (nopEventLog) Close() error         { return nil }
