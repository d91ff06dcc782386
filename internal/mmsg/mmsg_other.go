//go:build !linux

package mmsg

// Supported: this OS has no sendmmsg.
const Supported = false

// DisableGSO does nothing: there is no segmentation offload here.
func DisableGSO() {}
