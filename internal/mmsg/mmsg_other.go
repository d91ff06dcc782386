//go:build !linux

package mmsg

// Supported: this OS has no sendmmsg.
const Supported = false
