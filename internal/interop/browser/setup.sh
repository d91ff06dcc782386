#!/bin/sh
# Installs what the browser interop test needs: Debian's chromium and
# playwright-core (the version pinned in package.json) in this directory.
# Run as root on Debian 12; .ci/run calls it before the interop suite.
set -eu
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
command -v node >/dev/null 2>&1 || {
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
}
# playwright-core needs Node 20 or later (Debian 12's own nodejs is 18).
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "setup.sh: node $(node --version) is too old for playwright-core; install Node 20+" >&2
	exit 1
fi
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
fi
chromium --version
