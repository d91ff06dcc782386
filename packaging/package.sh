#!/usr/bin/env bash
# Makes the release files in $DIST (default dist) from the binaries of packaging/cross.sh
# (built here when missing):
#   camgate_<version>_<os>_<arch>.zip (Windows) / .tar.gz (Linux) with the
#     binary, configs/camgate.yml, README.md, INSTALL.txt (Windows: also
#     install.ps1, uninstall.ps1; Linux: camgate.service)
#   camgate_<debversion>_<debarch>.deb for each Linux target (nfpm)
#   checksums.txt (SHA-256 of all of the above)
#
# PACKAGE_TARGETS limits the targets (e.g. "linux_arm64 linux_armv7");
# default all five. VERSION defaults to git describe. NFPM is the nfpm command; default: the
# pinned release through `go run`. Sign the Windows binaries before
# packaging (packaging/sign.sh) so the zips carry signed binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export VERSION
DIST=${DIST:-dist}
export DIST
NFPM=${NFPM:-go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2}
FILE_VERSION=${VERSION#v}

# deb_version VERSION: a Debian version that sorts like the release it
# names. git describe gives 1.2.0, 1.2.0-rc1 (before 1.2.0: ~rc1),
# 1.2.0-3-gabc1234 (after 1.2.0: +3.gabc1234) and -dirty; an untagged
# build (a bare commit) sorts before any release: 0.0.0~git.abc1234.
deb_version() {
	local v=$1 base suffix=
	if [[ ! $v =~ ^[0-9]+\.[0-9]+ ]]; then
		echo "0.0.0~git.${v//-/.}"
		return
	fi
	if [[ $v == *-dirty ]]; then
		v=${v%-dirty}
		suffix=dirty
	fi
	if [[ $v =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}
		suffix=${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}${suffix:+.$suffix}
	fi
	base=${v//-/\~}
	echo "$base${suffix:++$suffix}"
}
DEB_VERSION=$(deb_version "$FILE_VERSION")

read -r -a targets <<<"${PACKAGE_TARGETS:-windows_amd64 windows_arm64 linux_amd64 linux_arm64 linux_armv7}"

goarch_of() {
	case "$1" in
	*_armv7) echo linux/arm ;;
	*) echo "${1/_//}" ;;
	esac
}

missing=()
for t in "${targets[@]}"; do
	exe=camgate
	[[ $t == windows_* ]] && exe=camgate.exe
	[ -f "$DIST/build/$t/$exe" ] || missing+=("$(goarch_of "$t")")
done
if [ ${#missing[@]} -gt 0 ]; then
	packaging/cross.sh "${missing[@]}"
fi

if [ ! -f README.md ]; then
	echo "package: README.md missing" >&2
	exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
rm -f "$DIST"/*.zip "$DIST"/*.tar.gz "$DIST"/*.deb "$DIST/checksums.txt"

for t in "${targets[@]}"; do
	name=camgate_${FILE_VERSION}_$t
	dir=$stage/$name
	mkdir -p "$dir/configs"
	cp configs/camgate.yml "$dir/configs/"
	cp README.md packaging/INSTALL.txt "$dir/"
	if [[ $t == windows_* ]]; then
		cp "$DIST/build/$t/camgate.exe" packaging/install.ps1 packaging/uninstall.ps1 "$dir/"
		# Windows tools expect CRLF in text files people open in Notepad.
		for f in "$dir/INSTALL.txt" "$dir/configs/camgate.yml"; do
			sed -i 's/\r*$/\r/' "$f"
		done
		(cd "$stage" && zip -q -r -X "$DIST/$name.zip" "$name")
		echo "$DIST/$name.zip"
	else
		cp "$DIST/build/$t/camgate" packaging/camgate.service "$dir/"
		tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name \
			-czf "$DIST/$name.tar.gz" "$name"
		echo "$DIST/$name.tar.gz"

		case "$t" in
		linux_amd64) deb_arch=amd64 ;;
		linux_arm64) deb_arch=arm64 ;;
		linux_armv7) deb_arch=armhf ;;
		esac
		DEB_ARCH=$deb_arch DEB_VERSION=$DEB_VERSION BIN=$DIST/build/$t/camgate \
			$NFPM package -f packaging/nfpm.yaml -p deb -t "$DIST/" >/dev/null
		echo "$DIST/camgate_${DEB_VERSION}_${deb_arch}.deb"
	fi
done

(
	cd "$DIST"
	shopt -s nullglob
	sha256sum -- *.zip *.tar.gz *.deb >checksums.txt
)
echo "$DIST/checksums.txt"
