package hal

// DefaultDataDir is where the agent keeps camgate.db when the config leaves
// agent.dataDir empty: ./data when run by hand, the system location when
// running as a service.
func DefaultDataDir(asService bool) string {
	if !asService {
		return "data"
	}
	return systemDataDir()
}
