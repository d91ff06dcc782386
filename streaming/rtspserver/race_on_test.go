//go:build race && unix

package rtspserver

// raceOn: the race detector is on. sync.Pool then drops a share of what
// is put back on purpose, so allocation counts mean nothing.
const raceOn = true
