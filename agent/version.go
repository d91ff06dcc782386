package agent

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Build stamps, set with -ldflags "-X github.com/camgate/camgate/agent.Version=...".
var (
	Version   = "dev"
	Commit    = "unknown"
	BuildDate = "unknown"
)

func versionString() string {
	commit, built := stamps(Commit, BuildDate, readBuildInfo())
	return fmt.Sprintf("camgate %s (commit %s, built %s, %s, %s/%s)",
		Version, commit, built, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// stamps returns the commit and build date: the -ldflags stamps when set,
// else what the go command recorded of the source tree (a plain "go build"
// in a git checkout records the revision, its commit time and whether the
// tree had changes).
func stamps(commit, built string, bi *debug.BuildInfo) (string, string) {
	if bi == nil {
		return commit, built
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if commit == "unknown" && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		commit = rev
		if modified {
			commit += "+dirty"
		}
	}
	if built == "unknown" && at != "" {
		built = at + " (commit time)"
	}
	return commit, built
}
