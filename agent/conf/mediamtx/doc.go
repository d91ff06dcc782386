// Package mediamtx converts a MediaMTX configuration (mediamtx.yml) into a
// camgate one, for "camgate import-mediamtx": what has a camgate
// equivalent is carried over under camgate's names, with a comment naming
// the MediaMTX key; everything else is listed, one line per key grouped by
// reason, so nothing is lost without a word.
//
// It reads MediaMTX's own syntax: YAML 1.1 booleans (yes, no, on, off),
// durations with days ("1d"), "all" as the old name of "all_others", the
// per-path credentials older releases had (readUser, publishPass...), and
// the deprecated spellings of renamed keys.
//
// A key camgate's configuration does not have in this build is written
// commented out, so the output always loads; Known decides, from conf's
// structs.
//
// The package only converts text: it runs nothing and reads no file.
package mediamtx
