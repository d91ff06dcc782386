//go:build !race

package rtspserver

const raceOn = false
