// Package interop holds camgate's interop tests (build tag interop) and the
// fixtures they and the bench harness (internal/cmd/bench) share: child
// processes stopped by PID with bounded timeouts, free loopback ports, the
// agent binary and its YAML config, the GStreamer RTSP camera of
// testdata/camera and the H.264 clip it serves.
//
// Everything here talks to 127.0.0.1 only. The tests run programs nobody on
// this project wrote (ffmpeg, ffprobe, gst-launch-1.0, GStreamer's RTSP
// server, mosquitto, chromium) against a real camgate process:
//
//	go test -race -tags interop -count=1 ./internal/interop/...
//
// main_test.go owns TestMain (it builds the agent once and removes the shared
// work dir); other test files in this package use AgentBin(t) and Clip(t)
// from there and must not declare their own TestMain. Logs of every process
// land in $INTEROP_OUT_DIR/<test name>/ when that is set (CI sets it to
// .ci/out/interop), else in the test's temp dir.
//
// The fixtures are plain code (no build tag) so that the bench harness can use
// them and so that `go vet ./...` checks them; fixtures_test.go (no tag
// either) tests them with nothing but sh, inside `go test ./...`.
package interop
