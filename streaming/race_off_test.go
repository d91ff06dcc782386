//go:build !race

package streaming

const raceOn = false
