package update

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/camgate/camgate/hal"
)

// Phase is where an update stands in the state file.
type Phase string

// Phases. PhaseIdle: nothing under way, Current (or the installed binary)
// runs. PhaseTrial: Candidate is on trial under the agent that wrote it.
// PhaseSwap: Candidate passed its trial and is being renamed into place
// (in-place platforms only).
const (
	PhaseIdle  Phase = ""
	PhaseTrial Phase = "trial"
	PhaseSwap  Phase = "swap"
)

// Binary is one camgate executable known to the state file.
type Binary struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
}

// Report is an outcome not yet sent as an event: the agent that runs next
// raises it and clears it.
type Report struct {
	Event   string    `json:"event"` // update.committed or update.rolled_back
	Version string    `json:"version"`
	From    string    `json:"from,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// State is dataDir/update/state.json: which binary runs and what is under
// way. It is written whole to a temporary file, synced and renamed over
// the old one, so a power loss leaves the old or the new state.
type State struct {
	Phase Phase `json:"phase"`
	// Current is the committed update; nil: the installed binary.
	Current *Binary `json:"current,omitempty"`
	// Previous is the binary Current replaced, kept one generation.
	Previous *Binary `json:"previous,omitempty"`
	// Candidate is the binary on trial or being swapped in.
	Candidate *Binary `json:"candidate,omitempty"`
	// Installed is the SHA-256 of the installed binary when Current was
	// committed: a package upgrade changes it, and the installed binary
	// then runs itself again instead of an older committed update.
	Installed string `json:"installed,omitempty"`
	// Starts counts the starts of Current through the redirect that were
	// not confirmed by the agent running for update.trialTimeout: a
	// committed update that crash-loops is dropped after maxStarts.
	Starts int     `json:"starts,omitempty"`
	Report *Report `json:"report,omitempty"`
}

// maxStarts is how many unconfirmed starts of a committed update Resolve
// allows before it falls back to the previous binary.
const maxStarts = 3

// Layout names the files of the updater under the data directory.
type Layout struct {
	Dir string // dataDir/update: state, downloads, store snapshot
	Bin string // dataDir/bin: binaries of updates (not on in-place platforms)
}

// NewLayout is the layout under dataDir.
func NewLayout(dataDir string) Layout {
	return Layout{Dir: filepath.Join(dataDir, "update"), Bin: filepath.Join(dataDir, "bin")}
}

func (l Layout) statePath() string    { return filepath.Join(l.Dir, "state.json") }
func (l Layout) partPath() string     { return filepath.Join(l.Dir, "download.part") }
func (l Layout) partMeta() string     { return filepath.Join(l.Dir, "download.json") }
func (l Layout) snapshotPath() string { return filepath.Join(l.Dir, "camgate.db.pre-trial") }

// LoadState reads the state file; a missing file is the idle state.
func (l Layout) LoadState() (State, error) {
	var s State
	b, err := os.ReadFile(l.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read update state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("read update state %s: %w", l.statePath(), err)
	}
	return s, nil
}

// SaveState replaces the state file atomically and durably.
func (l Layout) SaveState(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save update state: %w", err)
	}
	if err := writeFileSync(l.statePath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save update state: %w", err)
	}
	return nil
}

// writeFileSync writes path through a synced temporary file, renames it
// into place and syncs the directory.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error { return hal.SyncDir(dir) }

// FileSHA256 is the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// intact tells whether b's file exists with its recorded hash.
func intact(b *Binary) bool {
	if b == nil {
		return false
	}
	h, err := FileSHA256(b.Path)
	return err == nil && h == b.SHA256
}
