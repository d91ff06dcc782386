#!/bin/sh
# Regenerates demo.h264, the built-in test pattern of the "demo" source:
# 10 s of ffmpeg's testsrc (moving colour bars and a running counter),
# 640x360 at 25 fps, H.264 constrained baseline, one IDR every second,
# Annex-B elementary stream. It is embedded in the binary; no ffmpeg is
# needed at run time.
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i testsrc=size=640x360:rate=25:duration=10 \
  -c:v libx264 -profile:v baseline -level 3.1 -pix_fmt yuv420p \
  -preset veryslow -tune zerolatency -b:v 500k -maxrate 600k -bufsize 600k \
  -x264-params keyint=25:min-keyint=25:scenecut=0:repeat-headers=1 \
  -bsf:v h264_metadata=aud=remove \
  -f h264 demo.h264
