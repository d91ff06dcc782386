package hal

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// AgentIDFromMachine derives a stable, non-reversible agent id such as
// "cg-3f9a1c2b7d44" from the platform's machine identifier.
// It returns ErrNotSupported when the platform has none.
func AgentIDFromMachine() (string, error) {
	raw, err := machineID()
	if err != nil {
		return "", err
	}
	return IDFromSeed(raw), nil
}

// IDFromSeed hashes seed into the agent id format.
func IDFromSeed(seed string) string {
	sum := sha256.Sum256([]byte("camgate:" + strings.TrimSpace(seed)))
	return "cg-" + hex.EncodeToString(sum[:6])
}
