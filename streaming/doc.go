// Package streaming owns paths, their sources and the fan-out of RTP packets
// from one source to many readers.
//
// A Path has at most one source (a camera pulled over RTSP, the built-in
// demo, or an RTSP publisher) and any number of readers. On-demand paths
// start their source when the first reader acquires the path and close it a
// while after the last one leaves; always-on paths pull from start and
// reconnect forever with backoff.
//
// Fan-out happens on the source's goroutine: each packet is copied once into
// a pooled, reference-counted Packet and handed to every Reader, which must
// not block (it queues or drops). The Stream keeps the latest keyframe group
// so a new reader starts with a decodable picture.
//
// streaming must not know about MQTT, bbolt or the operating system; it
// reports what happens through the EventSink it is given.
package streaming
