// Package fleet is the fleet side of the uplink: what `camgate fleet` and
// the tests use, and a model of what a fleet manager does with camgate's
// topics. camgate has no fleet server; everything here is rebuilt from the
// broker's retained messages and the agents' replies and events.
//
//   - Inventory (Snapshot): the retained status of every agent (with its
//     labels), and the retained desired and reported state.
//   - Selection (Selector, Target): -l site=plant-3,line!=2, --all, ids.
//   - Commands: Command to one agent, CommandMany to many under one
//     command id, with one reply subscription (P/+/reply/ID).
//   - Desired state: ParseDesiredFile, PutDesired (retained on
//     P/ID/state/desired), Diff, ConvergenceOf, WaitReported.
//   - Staged rollouts: NewRollout, RunRollout, LoadRollout, TakeRollout;
//     progress retained on P/all/rollout/ID (see rollout.go).
//   - Watching: Subscribe and Watch, plain or, with Options.ShareGroup, as
//     MQTT shared subscriptions ($share/GROUP/P/+/health) so that several
//     consumers split the messages of a large fleet between them.
//
// It must not import the agent: it speaks only the topics and wire types
// of package uplink, as a real fleet manager would.
package fleet
