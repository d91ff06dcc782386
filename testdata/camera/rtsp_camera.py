#!/usr/bin/python3
"""A real RTSP camera for interop tests and benchmarks, served by GStreamer's
RTSP server (Debian: python3-gi gir1.2-gst-rtsp-server-1.0).

Two sources:
  --clip FILE  passes an H.264 MP4 clip through without re-encoding, looped
               forever with continuous timestamps (frames are pushed in real
               time into an appsrc, so the loop point is a plain new IDR);
  --live       encodes a moving test pattern with x264enc (zerolatency).

Listens on 127.0.0.1 only; prints "READY rtsp://127.0.0.1:PORT/PATH" once it
accepts connections, "CLIENT connected IP" and "CLIENT closed IP" for each
RTSP connection; exits 0 on SIGTERM or SIGINT.

Run it with /usr/bin/python3: a python3 elsewhere on PATH may lack gi.
"""

import argparse
import signal
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtspServer  # noqa: E402


def load_clip(path):
    """Reads every access unit of the clip's H.264 track into memory as
    Annex B byte-stream with SPS/PPS ahead of each IDR. Returns the frames
    (bytes, is_keyframe), the caps string and the frame duration in ns."""
    pipe = Gst.parse_launch(
        "filesrc name=src ! qtdemux ! h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false emit-signals=false"
    )
    pipe.get_by_name("src").set_property("location", path)
    sink = pipe.get_by_name("sink")
    pipe.set_state(Gst.State.PLAYING)
    frames, caps = [], None
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        if caps is None:
            caps = sample.get_caps()
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if not ok:
            continue
        frames.append((bytes(info.data), not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
        buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    if not frames or caps is None:
        sys.exit("camera: no H.264 frames in %s" % path)
    if not frames[0][1]:
        sys.exit("camera: %s does not start with a keyframe" % path)
    s = caps.get_structure(0)
    ok, num, den = s.get_fraction("framerate")
    if not ok or num == 0:
        num, den = 25, 1
    width = s.get_int("width")[1]
    height = s.get_int("height")[1]
    out_caps = (
        "video/x-h264,stream-format=byte-stream,alignment=au,"
        "width=%d,height=%d,framerate=%d/%d" % (width, height, num, den)
    )
    return frames, out_caps, Gst.SECOND * den // num


class ClipFeeder:
    """Pushes the clip's frames into one media's appsrc at the clip's frame
    rate, looping. Timestamps are exact multiples of the frame duration from
    the pipeline's running time at the first push, so they stay continuous
    across the loop and free of scheduling jitter (a 40 ms frame is stamped
    40 ms after the previous one, like a camera's encoder does)."""

    def __init__(self, appsrc, frames, frame_ns):
        self.appsrc = appsrc
        self.frames = frames
        self.frame_ns = frame_ns
        self.index = 0
        self.start = time.monotonic_ns()
        self.pushed = 0
        self.base = None
        self.accepted = False
        self.source_id = GLib.timeout_add(5, self.tick)

    def tick(self):
        due = (time.monotonic_ns() - self.start) // self.frame_ns + 1
        if self.base is None:
            # Timestamps are running time, which only means something once
            # the pipeline plays: until then, keep the schedule at frame 0
            # (an IDR) so the first frame out is a keyframe stamped "now".
            _, state, _ = self.appsrc.get_state(0)
            clock = self.appsrc.get_clock()
            if state != Gst.State.PLAYING or clock is None:
                self.start = time.monotonic_ns()
                return True
            self.base = clock.get_time() - self.appsrc.get_base_time()
            self.start = time.monotonic_ns()
            due = 1
        while self.pushed < due:
            data, _ = self.frames[self.index]
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = buf.dts = self.base + self.pushed * self.frame_ns
            buf.duration = self.frame_ns
            ret = self.appsrc.emit("push-buffer", buf)
            if ret == Gst.FlowReturn.EOS:
                self.source_id = None
                return False
            if ret != Gst.FlowReturn.OK and not self.accepted:
                # Not accepting yet: start over from the first frame, an
                # IDR, on a later tick. Once frames flow, only "unprepared"
                # (stop) ends the feeding.
                self.base = None
                return True
            self.accepted = True
            self.index = (self.index + 1) % len(self.frames)
            self.pushed += 1
        return True

    def stop(self):
        if self.source_id is not None:
            GLib.source_remove(self.source_id)
            self.source_id = None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--path", action="append", help="mount point, repeatable: each has its own pipeline (default /cam)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--clip", help="H.264 MP4 clip passed through, looped")
    src.add_argument("--live", action="store_true", help="live videotestsrc encoded by x264enc")
    ap.add_argument("--width", type=int, default=1280, help="--live only")
    ap.add_argument("--height", type=int, default=720, help="--live only")
    ap.add_argument("--fps", type=int, default=25, help="--live only")
    ap.add_argument("--kbps", type=int, default=2000, help="--live only")
    ap.add_argument("--gop", type=int, default=50, help="--live only: frames between IDRs")
    args = ap.parse_args()

    paths = args.path or ["/cam"]

    Gst.init(None)
    loop = GLib.MainLoop()
    clip = load_clip(args.clip) if args.clip else None
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    feeders = []
    for path in paths:
        server.get_mount_points().add_factory(path, make_factory(args, clip, feeders))
    def on_client(_server, client):
        # One line per RTSP connection, so tests can see when a relay pulls
        # (on demand) and when it lets go.
        conn = client.get_connection()
        peer = conn.get_ip() if conn else "?"
        print("CLIENT connected %s" % peer, flush=True)
        client.connect("closed", lambda _c: print("CLIENT closed %s" % peer, flush=True))

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        sys.exit("camera: cannot listen on 127.0.0.1:%d" % args.port)

    def stop(*_):
        for f in feeders:
            f.stop()
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)

    print("READY rtsp://127.0.0.1:%d%s" % (server.get_bound_port(), paths[0]), flush=True)
    loop.run()


def make_factory(args, clip, feeders):
    """One shared media factory: every client of a mount sees one pipeline."""
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    if clip:
        frames, caps, frame_ns = clip
        factory.set_launch(
            "( appsrc name=src is-live=true format=time caps=\"%s\" ! "
            "h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )" % caps
        )

        def on_configure(_factory, media):
            appsrc = media.get_element().get_child_by_name("src")
            feeder = ClipFeeder(appsrc, frames, frame_ns)
            feeders.append(feeder)
            def on_unprepared(_media):
                feeder.stop()
                if feeder in feeders:
                    feeders.remove(feeder)

            media.connect("unprepared", on_unprepared)

        factory.connect("media-configure", on_configure)
    else:
        factory.set_launch(
            "( videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,width=%d,height=%d,framerate=%d/1 ! "
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate=%d key-int-max=%d bframes=0 ! "
            "video/x-h264,profile=constrained-baseline ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
            % (args.width, args.height, args.fps, args.kbps, args.gop)
        )

    return factory


if __name__ == "__main__":
    main()
