package update

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/uplink"
)

// Resolve runs at the start of `camgate run`, before the store is opened,
// in the binary the service manager started (self). It finishes what an
// interrupted update left behind and returns the committed binary to run
// instead of self ("" to run self):
//
//   - PhaseTrial: the agent supervising a trial died (kill, power loss)
//     before it committed: the candidate is rolled back.
//   - PhaseSwap (in-place platforms): the swap was interrupted; the hash of
//     self tells whether the candidate is in place (committed) or not
//     (rolled back).
//   - Current set (Linux): self is the installed binary and redirects to
//     the committed update, unless a package upgrade replaced self since
//     (its hash changed: the installed binary wins) or the committed file
//     is damaged (the previous one, else self).
//
// Files under dataDir/bin that the state does not name are removed.
// Errors are logged, never fatal: the fallback is always to run self.
func Resolve(dataDir, self string, redirected bool, log zerolog.Logger) string {
	log = log.With().Str("component", "update").Logger()
	l := NewLayout(dataDir)
	st, err := l.LoadState()
	if err != nil {
		log.Error().Err(err).Msg("update state unreadable: running this binary")
		return ""
	}
	changed := false
	report := func(event, version, reason string) {
		st.Report = &Report{Event: event, Version: version, Reason: reason, At: time.Now().UTC()}
		if st.Current != nil && event == uplink.EventUpdateRolledBack {
			st.Report.From = st.Current.Version
		}
		changed = true
	}
	switch st.Phase {
	case PhaseTrial:
		c := st.Candidate
		st.Phase, st.Candidate = PhaseIdle, nil
		if c != nil {
			if !sameFile(c.Path, self) {
				_ = os.Remove(c.Path)
			}
			report(uplink.EventUpdateRolledBack, c.Version, "the agent supervising the trial stopped (killed or power lost) before the candidate was committed")
		}
		changed = true
	case PhaseSwap:
		c := st.Candidate
		st.Phase, st.Candidate = PhaseIdle, nil
		changed = true
		if c == nil {
			break
		}
		if sum, err := FileSHA256(self); err == nil && sum == c.SHA256 {
			from := ""
			if st.Current != nil {
				from = st.Current.Version
			}
			old := oldPath(self)
			oldSum, _ := FileSHA256(old)
			st.Previous = &Binary{Path: old, SHA256: oldSum, Version: from}
			st.Current = &Binary{Path: self, SHA256: c.SHA256, Version: c.Version}
			report(uplink.EventUpdateCommitted, c.Version, "")
			st.Report.From = from
		} else {
			_ = os.Remove(c.Path)
			report(uplink.EventUpdateRolledBack, c.Version, "the swap into place was interrupted before the candidate was in place")
		}
	}

	run := ""
	if !hal.UpdateInPlace() && st.Current != nil && !redirected && !sameFile(st.Current.Path, self) {
		selfSum, _ := FileSHA256(self)
		switch {
		case selfSum == st.Current.SHA256:
			// self is the committed build itself.
		case st.Installed != "" && selfSum != st.Installed:
			log.Info().Str("committed", st.Current.Version).Msg("the installed binary changed since the last update (package upgrade): it runs, the updates under the data directory are dropped")
			st.Current, st.Previous, st.Installed = nil, nil, ""
			changed = true
		case st.Starts >= maxStarts:
			bad := st.Current
			log.Error().Str("version", bad.Version).Int("starts", st.Starts).Msg("committed update keeps stopping: falling back")
			prev := st.Previous
			st.Current, st.Previous, st.Starts = nil, nil, 0
			if intact(prev) {
				st.Current = prev
				run = prev.Path
			}
			report(uplink.EventUpdateRolledBack, bad.Version, fmt.Sprintf("the committed update stopped %d times before it had run for update.trialTimeout", maxStarts))
		case intact(st.Current):
			run = st.Current.Path
			st.Starts++
			changed = true
		case intact(st.Previous):
			log.Error().Str("path", st.Current.Path).Msg("committed update missing or damaged: running the previous one")
			st.Current, st.Previous = st.Previous, nil
			run = st.Current.Path
			changed = true
		default:
			log.Error().Str("path", st.Current.Path).Msg("committed update missing or damaged: running the installed binary")
			st.Current, st.Previous, st.Installed = nil, nil, ""
			changed = true
		}
	}
	if changed {
		if err := l.SaveState(st); err != nil {
			log.Error().Err(err).Msg("save update state")
		}
	}
	cleanBin(l, st, log)
	return run
}

// cleanBin removes binaries under dataDir/bin that the state does not name
// (left by a download or staging interrupted before the state named them).
func cleanBin(l Layout, st State, log zerolog.Logger) {
	entries, err := os.ReadDir(l.Bin)
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, b := range []*Binary{st.Current, st.Previous, st.Candidate} {
		if b != nil {
			keep[filepath.Clean(b.Path)] = true
		}
	}
	for _, e := range entries {
		p := filepath.Join(l.Bin, e.Name())
		if keep[p] || !strings.HasPrefix(e.Name(), "camgate-") && !strings.HasPrefix(e.Name(), ".staging-") {
			continue
		}
		if err := os.Remove(p); err == nil {
			log.Info().Str("path", p).Msg("removed a binary no update refers to")
		}
	}
}

// TakeReport returns the outcome the last update left to report, and
// clears it: the agent raises it as an event once it runs.
func TakeReport(dataDir string) (*Report, error) {
	l := NewLayout(dataDir)
	st, err := l.LoadState()
	if err != nil || st.Report == nil {
		return nil, err
	}
	r := st.Report
	st.Report = nil
	if err := l.SaveState(st); err != nil {
		return nil, err
	}
	return r, nil
}
