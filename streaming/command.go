package streaming

import (
	"context"
	"strconv"
)

// Hooks: the path keys whose command a Command runs.
const (
	HookRunOnInit   = "runOnInit"
	HookRunOnDemand = "runOnDemand"
)

// Command is a path's runOnInit or runOnDemand command, as the path hands
// it to the CommandRunner.
type Command struct {
	Hook    string // HookRunOnInit or HookRunOnDemand
	Path    string // the path's name
	Line    string // the command line as configured
	Restart bool   // start it again when it exits
	// Vars are path-specific variables for the command: G1, G2... (the
	// groups of a "~regexp" entry) and, for runOnDemand, MTX_QUERY.
	Vars map[string]string
}

// CommandRunner runs path commands (streaming/exec implements it with
// process trees). Run starts c, starts it again when it exits if
// c.Restart, and returns when ctx ends, having stopped the command and
// every process it started; or, without c.Restart, when it exits, with
// its exit error.
type CommandRunner interface {
	Run(ctx context.Context, c Command) error
}

// regexpVars are G1, G2... for the groups of name in re's match.
func regexpVars(e regexpEntry, name string) map[string]string {
	m := e.re.FindStringSubmatch(name)
	if len(m) < 2 {
		return nil
	}
	vars := make(map[string]string, len(m)-1)
	for i, g := range m[1:] {
		vars["G"+strconv.Itoa(i+1)] = g
	}
	return vars
}
