#!/usr/bin/env bash
# Cross-builds camgate: CGO_ENABLED=0, -trimpath, stripped, stamped with
# version, commit and build date (shown by `camgate version`).
#
#   packaging/cross.sh                      all targets
#   packaging/cross.sh linux/arm64 ...      only these (os/arch; linux/arm is GOARM=7)
#
# Binaries: $DIST/build/<os>_<arch>/camgate[.exe] (arm: linux_armv7);
# DIST defaults to dist.
# VERSION, COMMIT, DATE and LDFLAGS come from the environment when set
# (the Taskfile passes its own), else from git. Builds run one after the
# other: the build machines are small.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
DATE=${DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
PKG=github.com/camgate/camgate/agent
DIST=${DIST:-dist}
LDFLAGS=${LDFLAGS:-"-s -w -X $PKG.Version=$VERSION -X $PKG.Commit=$COMMIT -X $PKG.BuildDate=$DATE"}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(windows/amd64 windows/arm64 linux/amd64 linux/arm64 linux/arm)
fi

# target_dir os/arch: the directory name used under dist/build and in archive names.
target_dir() {
	case "$1" in
	linux/arm) echo linux_armv7 ;;
	*) echo "${1/\//_}" ;;
	esac
}

for t in "${targets[@]}"; do
	os=${t%/*}
	arch=${t#*/}
	dir=$DIST/build/$(target_dir "$t")
	exe=camgate
	[ "$os" = windows ] && exe=camgate.exe
	mkdir -p "$dir"
	goarm=
	[ "$arch" = arm ] && goarm=7
	echo "build $t -> $dir/$exe"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$goarm \
		go build -trimpath -ldflags "$LDFLAGS" -o "$dir/$exe" ./agent/cmd/camgate
done
echo "version $VERSION commit $COMMIT date $DATE"
