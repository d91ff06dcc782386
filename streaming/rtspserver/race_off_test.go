//go:build !race && unix

package rtspserver

const raceOn = false
