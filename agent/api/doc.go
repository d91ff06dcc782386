// Package api is camgate's local HTTP API (SPEC section 6) and its
// Prometheus /metrics page, listening on loopback by default.
//
// It owns HTTP only: routing, status codes, encoding. Every operation is a
// call into the agent through the Commands interface (the same command
// table the MQTT uplink uses, so both behave identically) and every metric
// comes from the Metrics interface. It must not import the agent, the
// store or streaming.
package api
