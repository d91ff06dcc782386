#!/bin/sh
# Installs what the browser interop test needs: Debian's chromium, Node 20+
# (node.sh) and playwright-core (the version pinned in package.json) in
# this directory. The test then needs that node first on PATH: .ci/run
# puts it there.
# Run as root on Debian 12; .ci/run calls it before the interop suite.
set -eu
cd "$(dirname "$0")"
if ! command -v chromium >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
# playwright-core needs Node 20 or later (Debian 12's own nodejs is 18):
# node.sh finds or installs one.
nodebin=$(sh ./node.sh)
PATH=$nodebin:$PATH
export PATH
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund
else
	npm install --no-audit --no-fund
fi
chromium --version
