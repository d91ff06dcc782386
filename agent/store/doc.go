// Package store keeps camgate's durable state in one bbolt file,
// dataDir/camgate.db (mode 0600, fsync on every commit).
//
// # Basics
//
// Open creates the directory and the file, takes bbolt's file lock with a
// timeout (a second agent on the same data directory fails fast with
// ErrLocked), runs the schema migrations and increments the boot count.
// The buckets are:
//
//	meta      schema version, agent id, boot count, outbox seq and drop counters
//	paths     fleet-managed path configs (name -> JSON, real source URL kept)
//	outbox    health and events waiting for the broker's PUBACK (seq -> record)
//	commands  command journal (id -> state and stored reply), pruned by age and count
//	stats     lifetime counters per path
//	state     the desired-state document last applied and its report
//
// A file that bbolt cannot open as a database is moved aside to
// camgate.db.corrupt-<time> and a fresh file is created; Recovered reports
// the new name of the old file so the agent can raise an event.
//
// # Caveats
//
// store knows nothing of MQTT, streaming or the agent: it stores bytes and a
// few typed records. It must not log secrets (it logs nothing at all) and
// must not be imported by streaming or uplink; the agent adapts it to the
// small interfaces those packages declare. Every write is a bbolt update
// transaction and therefore an fsync: callers batch where rates are high
// (DeleteOutbox takes many seqs).
package store
