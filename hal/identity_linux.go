//go:build linux

package hal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// machineID reads the systemd/dbus machine id under root. An empty file
// counts as absent: images are often shipped with an empty
// /etc/machine-id that is filled on first boot.
func machineID(root string) (string, error) {
	for _, p := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", fmt.Errorf("read machine id: %w", ErrNotSupported)
}
