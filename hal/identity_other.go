//go:build !linux && !windows

package hal

func machineID() (string, error) { return "", ErrNotSupported }
