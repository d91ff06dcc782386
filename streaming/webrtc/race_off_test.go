//go:build !race

package webrtc

const raceOn = false
