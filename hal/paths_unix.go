//go:build !windows

package hal

func systemDataDir() string { return "/var/lib/camgate" }
