#!/bin/sh
# Prints the directory of a Node.js binary new enough for the browser
# interop test (playwright-core needs Node 20 or later; Debian 12's own
# nodejs is 18). The node on PATH is used when it is new enough; else
# Node $NODE_VERSION is installed from the npm registry's node-linux-<arch>
# package (the official build, as npm verifies it) into
# ${CAMGATE_NODE_CACHE:-$HOME/.cache/camgate}/node-<version>-<arch>, kept
# for later runs. Debian's nodejs and npm are installed first when there
# is no npm to fetch it with. Progress goes to stderr.
#
# Use: PATH="$(sh internal/interop/browser/node.sh):$PATH"
set -eu

NODE_MIN=20
NODE_VERSION=${NODE_VERSION:-20.20.2}

say() { echo "node.sh: $*" >&2; }

major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if node=$(command -v node 2>/dev/null) && [ "$(major "$node")" -ge "$NODE_MIN" ]; then
	say "using $node ($("$node" --version))"
	dirname "$node"
	exit 0
fi
if [ -n "${node:-}" ]; then
	say "$node is $("$node" --version 2>/dev/null || echo '?'), older than $NODE_MIN"
else
	say "no node on PATH"
fi

case $(uname -m) in
x86_64 | amd64) arch=x64 ;;
aarch64 | arm64) arch=arm64 ;;
*)
	say "no Node $NODE_VERSION package for $(uname -m)"
	exit 1
	;;
esac
dir=${CAMGATE_NODE_CACHE:-$HOME/.cache/camgate}/node-$NODE_VERSION-$arch
if [ -x "$dir/bin/node" ] && [ "$(major "$dir/bin/node")" -ge "$NODE_MIN" ]; then
	say "using $dir/bin/node (installed earlier)"
	echo "$dir/bin"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		say "no npm to fetch Node with, and not root to install Debian's"
		exit 1
	fi
	say "installing Debian's nodejs and npm to fetch Node $NODE_VERSION with"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "fetching node-linux-$arch@$NODE_VERSION from the npm registry"
(cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >&2)
rm -rf "$dir.new"
mkdir -p "$dir.new"
tar -xzf "$tmp"/node-linux-"$arch"-"$NODE_VERSION".tgz -C "$dir.new" --strip-components=1
rm -rf "$dir"
mv "$dir.new" "$dir"
if [ "$(major "$dir/bin/node")" -lt "$NODE_MIN" ]; then
	say "$dir/bin/node does not run"
	exit 1
fi
say "installed $dir/bin/node ($("$dir/bin/node" --version))"
echo "$dir/bin"
