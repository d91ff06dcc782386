//go:build !linux && !windows

package hal

import "fmt"

func machineID(string) (string, error) {
	return "", fmt.Errorf("read machine id: %w", ErrNotSupported)
}
