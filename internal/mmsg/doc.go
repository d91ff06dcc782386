// Package mmsg sends many UDP datagrams in one system call, sendmmsg(2)
// on Linux, for the fan-outs that write the same access unit to many
// readers (RTSP over UDP, WebRTC).
//
// Written here rather than with x/net/ipv4's WriteBatch: that one always
// waits for a full socket (the RTSP server's inline writes must not),
// takes a net.Addr per message, and would add its socket package to the
// binary for one system call.
//
// Elsewhere Supported is false and callers send a datagram per packet.
package mmsg
