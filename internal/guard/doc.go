// Package guard holds the rules that protect camgate's listeners from
// hostile clients, in one shared place for every protocol: failed-login
// throttling per source address (throttle.go). It knows nothing of
// streaming, MQTT or the OS, and decides nothing but what it is asked.
package guard
