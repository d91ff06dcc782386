package hal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// AgentIDFromMachine derives a stable, non-reversible agent id such as
// "cg-3f9a1c2b7d44" from the platform's machine identifier (Windows
// MachineGuid, Linux /etc/machine-id). It returns an error wrapping
// ErrNotSupported when the machine has none; the agent then uses the random
// id persisted in its store.
func AgentIDFromMachine() (string, error) {
	return (&Machine{}).AgentID()
}

// IDFromSeed hashes seed into the agent id format. The hash keeps the raw
// machine identifier (which some software treats as a secret) off the wire.
func IDFromSeed(seed string) string {
	sum := sha256.Sum256([]byte("camgate:" + strings.TrimSpace(seed)))
	return "cg-" + hex.EncodeToString(sum[:6])
}

// AgentID is AgentIDFromMachine for the machine under m.SysRoot.
func (m *Machine) AgentID() (string, error) {
	raw, err := machineID(m.root())
	if err != nil {
		return "", err
	}
	return IDFromSeed(raw), nil
}

// Hostname is the machine's host name, sent in health so that operators
// recognise the box behind an agent id.
func (m *Machine) Hostname() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("read hostname: %w", err)
	}
	return h, nil
}
