//go:build windows

package hal

func syncDir(string) error { return nil }
