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
//	meta      schema version, agent id, boot count, outbox seq, drop and failure
//	          counters, the clean-stop flag
//	paths     fleet-managed path configs (name -> JSON, real source URL kept)
//	outbox    health and events waiting for the broker's PUBACK (seq -> record)
//	commands  command journal (id -> state and stored reply), pruned by age and count
//	stats     lifetime counters per path
//	state     the desired-state document last applied and its report
//
// Before bbolt maps the file, Open checks it with plain reads (pagefile.go,
// walk.go): the meta pages, the size against the pages in use, the
// freelist and the trees, every page after a run that did not stop cleanly,
// all but the outbox's leaves after a clean one. A damaged file is moved
// aside to camgate.db.corrupt-<time> and a fresh file takes its place with
// what could be read of the old one; seq continues after the highest seq
// found (further when the counter itself was lost), so it never repeats
// for the fleet. Recovered reports what happened for the store.recovered
// event. bbolt's own panics, and faults on its map, are turned into errors
// at open and in every transaction of the outbox (Damaged).
//
// The outbox's seq is taken by every append, also one that fails (disk
// full): the fleet sees the gap and OutboxStats counts it.
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
