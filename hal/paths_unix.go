//go:build !windows

package hal

func systemDataDir() string    { return "/var/lib/camgate" }
func systemConfigFile() string { return "/etc/camgate/camgate.yml" }

// systemLogFile is empty: systemd's journal (and any other init's log
// capture) keeps stderr, with its own rotation.
func systemLogFile() string { return "" }
