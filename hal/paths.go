package hal

// DefaultDataDir is where the agent keeps camgate.db when the config leaves
// agent.dataDir empty: ./data when run by hand (so trying the binary leaves
// nothing behind outside the current directory), the system location when
// running as a service: /var/lib/camgate, %ProgramData%\camgate.
func DefaultDataDir(asService bool) string {
	if !asService {
		return "data"
	}
	return systemDataDir()
}

// DefaultConfigFile is where packages and install scripts put the config
// file, and what `camgate service install` registers when given no -c:
// /etc/camgate/camgate.yml, %ProgramData%\camgate\camgate.yml.
func DefaultConfigFile() string {
	return systemConfigFile()
}

// DefaultLogFile is the log file the agent writes when agent.logFile is
// empty. It is "" (stderr only) when run by hand and under systemd, whose
// journal keeps stderr; a Windows service has no console, so there it is
// %ProgramData%\camgate\logs\camgate.log.
func DefaultLogFile(asService bool) string {
	if !asService {
		return ""
	}
	return systemLogFile()
}
