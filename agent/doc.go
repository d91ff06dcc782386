// Package agent is camgate's composition root: it builds every part from
// the configuration (state store, path manager, RTSP and WebRTC servers,
// local API, MQTT uplink) and runs them under one errgroup. It is the only
// package that imports several subsystems, and nothing imports it but the
// main package.
package agent
