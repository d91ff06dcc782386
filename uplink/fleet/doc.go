// Package fleet is the fleet side of the uplink in miniature: it lists
// agents from their retained status, reads one agent's status, sends a
// command and waits for its reply, and watches health, events and status.
// It backs `camgate fleet` and the tests.
//
// It must not import the agent: it speaks only the topics and wire types
// of package uplink, as a real fleet manager would.
package fleet
