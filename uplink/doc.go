// Package uplink is camgate's link to the fleet over MQTT 3.1.1: the
// topic layout and wire types of SPEC section 7, the paho client with its
// birth, last-will and shutdown status, the reconnect loop, the command
// hand-off and the outbox drainer.
//
// # Basics
//
// Client.Run connects with clean session off and client id = agent id, so
// the broker queues QoS 1 commands while the agent is away. After each
// connect it subscribes to P/ID/cmd/+ and P/all/cmd/+, publishes the
// retained online status, and drains the outbox: messages are published in
// seq order with at most InFlight unacknowledged, and deleted from the
// outbox only after the broker's PUBACK. Commands arrive on Commands() (to
// run) and Busy() (to answer busy when CommandQueue are waiting); the paho
// callback only copies the message into a bounded inbox. paho's automatic
// acknowledgement is off: the agent calls Incoming.Ack once a command's
// reply is journaled and published, so the broker keeps every command the
// agent has not taken on and sends it again on the next session. What does
// not fit the inbox is left unacknowledged and fetched again by cycling the
// session once the inbox has drained.
//
// The client also subscribes to its retained desired state
// (P/ID/state/desired) and hands the newest document over on Desired();
// the agent applies it and answers with PublishReported on the retained
// P/ID/state/reported. The status carries the agent's labels
// (Options.Labels, SetLabels), which fleet selectors match.
//
// # Caveats
//
// uplink knows no paths, no bbolt and no streaming: the outbox is the small
// Outbox interface declared here and satisfied by the agent, and command
// execution belongs to the agent's dispatcher. Replies are published
// directly (not through the outbox): a lost reply is recovered by the fleet
// repeating the command id, which the agent answers from its journal.
// paho's own message store is in memory and only holds the in-flight
// window; it is not the durable queue. Broker URLs are logged redacted.
package uplink
