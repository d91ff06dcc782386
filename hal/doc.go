// Package hal hides the platform from the rest of camgate: machine identity,
// default directories, system metrics, service-manager integration (Windows
// service control manager, systemd), the systemd watchdog, the Windows
// event log, process trees (a command and every process it starts,
// stopped together: a process group on Unix, a job object on Windows), and
// the per-OS parts of self-update (update.go: how a candidate binary is run
// on trial and killed, the hand-over to it, the in-place swap on Windows).
//
// It is the only package that asks which OS it runs on; each platform has
// its own file selected by build tags (_linux.go, _windows.go) and an explicit
// _other.go where the facility does not exist, returning ErrNotSupported.
//
// Hardware readers take a root directory (Machine.SysRoot) so tests run
// against recorded trees under testdata/ instead of the CI host.
//
// hal must not import other camgate packages: it knows nothing of streams,
// the uplink or the store. The persisted random fallback id lives in the
// agent's store; hal only says when the machine has no identifier.
package hal
