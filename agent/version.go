package agent

import (
	"fmt"
	"runtime"
)

// Build stamps, set with -ldflags "-X github.com/camgate/camgate/agent.Version=...".
var (
	Version   = "dev"
	Commit    = "unknown"
	BuildDate = "unknown"
)

func versionString() string {
	return fmt.Sprintf("camgate %s (commit %s, built %s, %s, %s/%s)",
		Version, Commit, BuildDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
