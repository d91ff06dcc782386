#!/usr/bin/env bash
# Makes a signed release in $DIST (default dist): the archives and .debs of
# packaging/package.sh (every target unless PACKAGE_TARGETS says otherwise),
# then
#   SHA256SUMS            sha256sum of every archive and .deb
#   SHA256SUMS.minisig    its minisign signature
#   FILE.minisig          the signature of each archive and .deb (what
#                         agent.update's "signature" takes)
# signed with the secret key RELEASE_KEY (default
# ~/.camgate-release/camgate.key, made by `task keygen`; RELEASE_KEY_PASSWORD
# when it is encrypted). The signatures are minisign's own format: an
# operator checks with
#   minisign -Vm SHA256SUMS -P <public key> && sha256sum -c SHA256SUMS
# or with `camgate verify FILE`. When the public key sits beside the secret
# one (camgate.pub), every signature is checked against it before the
# script ends. RELEASE_SKIP_PACKAGE=1 signs what is in $DIST already.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DIST=${DIST:-dist}
KEY=${RELEASE_KEY:-$HOME/.camgate-release/camgate.key}
if [ ! -f "$KEY" ]; then
	echo "release: no secret key at $KEY: run 'task keygen' (or set RELEASE_KEY)" >&2
	exit 1
fi
KEY=$(cd "$(dirname "$KEY")" && pwd)/$(basename "$KEY")

if [ "${RELEASE_SKIP_PACKAGE:-}" != 1 ]; then
	packaging/package.sh
fi

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
go build -o "$tools/release" ./internal/cmd/release
go build -o "$tools/camgate" ./agent/cmd/camgate

cd "$DIST"
shopt -s nullglob
files=(*.zip *.tar.gz *.deb)
shopt -u nullglob
if [ ${#files[@]} -eq 0 ]; then
	echo "release: nothing to sign in $DIST" >&2
	exit 1
fi
rm -f SHA256SUMS ./*.minisig
sha256sum -- "${files[@]}" >SHA256SUMS
"$tools/release" sign -key "$KEY" SHA256SUMS "${files[@]}" >/dev/null

pub=${KEY%.key}.pub
if [ -f "$pub" ]; then
	# Checked with camgate's own verifier, the way operators will.
	P=$(sed -n 2p "$pub")
	for f in SHA256SUMS "${files[@]}"; do
		"$tools/camgate" verify "$f" -P "$P" >/dev/null
	done
	echo "release: signatures checked against $pub"
fi
echo "$(pwd)/SHA256SUMS"
echo "$(pwd)/SHA256SUMS.minisig"
