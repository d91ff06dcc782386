package hal

import (
	"os/exec"
)

// Self-update support: how a new camgate binary is run on trial, how the
// running agent hands over to it, and whether updates replace the
// executable in place. agent/update owns the procedure and its state; the
// per-OS parts are here.
//
//	               Linux (and packages)              Windows
//	binaries       dataDir/bin, the installed one    in place: the running exe
//	               redirects there at start (exec)   renamed aside (.old.exe)
//	trial child    own process group, SIGKILL when   job object killed when the
//	               the agent dies (Pdeathsig)        agent's handle closes
//	hand-over      execve: same PID for systemd      exit for the service
//	                                                 manager's restart

// TrialChild is a candidate binary started by StartTrialChild. Wait on
// its exec.Cmd as usual; then call Release.
type TrialChild struct {
	Cmd *exec.Cmd
	sys trialSys
}

// StartTrialChild starts cmd so that it cannot outlive the agent: on Linux
// in its own process group with SIGKILL as the parent-death signal, on
// Windows inside a job object that is killed when the agent's handle to it
// closes, including when the agent itself dies.
func StartTrialChild(cmd *exec.Cmd) (*TrialChild, error) {
	return startTrialChild(cmd)
}

// KillTree kills the child and every process it started.
func (c *TrialChild) KillTree() error { return c.killTree() }

// Release frees what StartTrialChild held once the child has been waited
// for.
func (c *TrialChild) Release() { c.release() }

// UpdateInPlace reports whether an update replaces the executable in its
// directory (Windows: the service manager and the firewall rules name that
// path) rather than living under the data directory, where the installed
// executable finds it through Redirect at start (Linux: /usr/bin is
// read-only for the hardened unit).
func UpdateInPlace() bool { return updateInPlace }

// ExecutableName is the file name of the camgate binary on this platform.
func ExecutableName() string { return exeName }

// SyncDir makes the renames and creations in dir durable (fsync of the
// directory). On Windows it does nothing: a directory cannot be synced
// through a plain handle, and NTFS journals its metadata.
func SyncDir(dir string) error { return syncDir(dir) }
