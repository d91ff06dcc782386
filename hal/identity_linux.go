//go:build linux

package hal

import (
	"fmt"
	"os"
	"strings"
)

func machineID() (string, error) {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return string(b), nil
		}
	}
	return "", fmt.Errorf("machine id: %w", ErrNotSupported)
}
