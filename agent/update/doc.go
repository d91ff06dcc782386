// Package update is camgate's self-update: agent.update's download and
// checks, the trial of the new binary, commit or rollback, and the
// decision at start of which binary runs. The per-OS parts (how the
// candidate is started and killed, the hand-over, the in-place swap) are
// in hal; the agent wires this package to its command table, its events
// and its run loop.
//
// # The procedure
//
//  1. Start checks the request and replies at once: accepted, a no-op
//     (the running version), or conflict (an update is under way). The
//     rest takes minutes on a slow link, so progress and outcome are
//     events: update.progress (percent, at most one per 10 % and second),
//     update.failed (with the check that refused it), update.committed,
//     update.rolled_back (with the reason).
//  2. Download over HTTP(S) to dataDir/update/download.part, resumed with
//     a Range request after a broken transfer, bounded in size; then the
//     size, the SHA-256 and the minisign signature against
//     update.publicKeys, before anything else. A refusal removes the
//     download and changes nothing else.
//  3. The binary (or, from a .tar.gz/.zip release archive, its camgate
//     executable) is staged where it will run and self-tested:
//     `NEW version` and `NEW check-config -c CURRENT` must exit 0, so a
//     build for another platform or one that cannot read the config is
//     refused while the running agent goes on. The state file
//     (dataDir/update/state.json, replaced atomically and synced) now says
//     PhaseTrial with the candidate.
//  4. The running agent, which is known good, stops its services (the
//     listeners, the uplink with its offline status, bbolt), snapshots the
//     closed store and starts the candidate as its child: on Linux in its
//     own process group with SIGKILL as the parent-death signal, on
//     Windows in a job object killed when the agent's handle closes. The
//     candidate runs `run` as usual but on trial: once its listeners are
//     up, its uplink is connected (when one is configured) and its
//     always-on paths have started, it writes "healthy" on its standard
//     output.
//  5. Healthy within update.trialTimeout: the agent records the commit
//     (Current = candidate, Previous = the binary it replaced, one
//     generation kept), writes "committed" to the candidate, which stops
//     gracefully, and hands over: on Linux it execs the new binary, which
//     keeps the PID that systemd's Type=notify (NotifyAccess=main) and
//     its watchdog expect, and the agent never stopped pinging the
//     watchdog during the trial; on Windows the candidate is renamed into
//     the executable's path (the running one renamed aside to
//     camgate.old.exe) and the service exits with its restart code for the
//     service manager's recovery. The new binary raises update.committed.
//  6. Otherwise (the candidate exits, crashes, hangs, never becomes
//     healthy, or the agent is asked to stop) its process tree is killed,
//     the state is rolled back and the agent runs its own agent again,
//     which raises update.rolled_back with the exit status or signal, the
//     candidate's last lines of output, or the timeout.
//
// # Why the known-good agent owns the trial
//
// A candidate that dies before running any of its own code (wrong
// platform, exits at once, crash loop) cannot roll itself back, and a
// service manager's restart only restarts the same broken file. So the
// trial is owned by a process that is not the candidate: the agent that
// was running, and that is known to work. Its supervision needs no
// cooperation from the candidate beyond one line of output, and a child
// that cannot outlive it means a kill of the agent never leaves an
// orphaned candidate holding the ports and the store.
//
// # No single death leaves the box without a runnable binary
//
// On Linux the packaged binary (/usr/bin/camgate) is read-only for the
// hardened unit (ProtectSystem=strict) and is never modified: updates
// live under dataDir/bin, and Resolve, at the start of `camgate run`,
// redirects the installed binary to the committed update by exec. Every
// switch is one atomic rename of the state file, and each step resolves
// at the next start:
//
//	killed while          next start runs        recorded as
//	downloading/checking  the running version    nothing (download resumes)
//	on trial              the running version    rolled back ("supervising agent stopped")
//	after the commit      the new version        committed
//
// A committed binary that is missing or damaged (hash) falls back to the
// previous one, then to the installed one; one that passed its trial but
// then stops three times before it has run for update.trialTimeout (a
// crash loop outside the trial) is dropped the same way and reported as
// rolled back; a package upgrade of the
// installed binary (its hash changed) makes it run itself again. A
// rolled-back candidate that migrated the store to a newer schema is
// undone from the snapshot taken before the trial.
//
// On Windows the executable is replaced in place, because the service's
// ImagePath and the firewall rules of install.ps1 name it. The running
// exe cannot be overwritten, only renamed, so the swap is two renames
// recorded before (PhaseSwap) and after; Resolve finishes an interrupted
// one by comparing the hash of the executable with the candidate's. The
// one window this cannot close is a death between the two renames
// (microseconds, after the candidate has stopped): the previous binary is
// then camgate.old.exe and the new one camgate.new.exe beside the missing
// camgate.exe.
//
// github.com/minio/selfupdate is not used: it downloads and swaps in one
// call, while this procedure stages, self-tests and tries the candidate
// before any switch, never touches the installed binary on Linux, and
// needs the state written around the Windows renames, which are the only
// part it would have done.
//
// # Caveats
//
// The trial protocol (the CAMGATE_TRIAL environment variable, "healthy"
// and "committed" lines) is a contract between releases: a release older
// than this package never says healthy, so a downgrade to it is rolled
// back. The package must not import the agent; it logs no secrets (URLs
// go through redact).
package update
