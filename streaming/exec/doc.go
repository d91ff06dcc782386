// Package exec runs the paths' runOnInit and runOnDemand commands (for
// example ffmpeg reading a USB webcam and publishing it to its path) as
// MediaMTX does: the command line split as a shell would, $MTX_PATH,
// $RTSP_PORT, $G1... expanded and set in its environment, restarted when
// it exits if asked, and stopped with every process it started.
//
// It implements streaming.CommandRunner. The processes themselves (a
// process group, a Windows job object) are hal's; exec owns the restart
// loop and the command's output, which goes to the agent's log line by
// line, redacted and bounded in rate.
//
// exec must not decide when a command runs: the path does.
package exec
