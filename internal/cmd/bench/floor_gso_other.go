//go:build !linux

package main

import "net"

// floorGSO: no segmentation offload here.
func floorGSO(*net.UDPConn, []*net.UDPAddr) func(pkts [][]byte) { return nil }
