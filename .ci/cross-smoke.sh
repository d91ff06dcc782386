#!/usr/bin/env bash
# Cross-platform smoke test, called by .ci/run (or by hand, as root on
# Debian 12). Installs Wine, qemu-user-static, the MinGW compiler and ffmpeg
# when missing, then:
#
#   windows/amd64 under Wine: hal's tests built for Windows pass;
#     `camgate version`; `service install` reaches
#     Wine's service manager or fails with a clear message and leaves
#     nothing behind; the agent run by the service manager serves the demo
#     path and stops gracefully on `service stop`; the agent run in the
#     foreground serves the demo path. The binary is Authenticode-signed
#     first with a throwaway certificate (packaging/sign.sh), so the signed
#     binary is what runs.
#     agent.update in the foreground under Wine: a candidate that exits 1
#     is rolled back (job object, trial pipes) and the agent serves again;
#     a signed good release is verified, self-tested, tried, renamed into
#     place with the running exe renamed aside to camgate.old.exe, and the
#     hand-over starts it (a Windows service would exit for the service
#     manager's restart instead, which Wine 8.0 lacks: not run here).
#   linux/arm64 and linux/arm (v7) under qemu: the agent serves the demo
#     path and stops gracefully on SIGTERM.
#   .deb packages for both ARM targets (packaging/package.sh, nfpm),
#     inspected with dpkg-deb -I / -c and their control files.
#
# "Serves the demo path" means the host's ffprobe decodes at least
# MIN_FRAMES frames of rtsp://127.0.0.1:PORT/demo over TCP.
#
# Everything listens on 127.0.0.1 on free ports; each process started here
# is stopped by its PID; Wine runs in its own prefix under a temp dir,
# whose wineserver is stopped at the end. Prints PASS/FAIL per check and
# exits non-zero when any failed. Logs: $CAMGATE_CROSS_OUT (default
# .ci/out/cross).
#
# Debian 12's Wine 8.0 lacks bcryptprimitives.dll, which the Go runtime
# (1.24+) loads at start for ProcessPrng: testdata/wine/processprng.c is a
# shim on top of RtlGenRandom, built with MinGW into the prefix's system32.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${CAMGATE_CROSS_OUT:-$ROOT/.ci/out/cross}
MIN_FRAMES=${MIN_FRAMES:-10}
# The agent reads CAMGATE_<SECTION>_<KEY> overrides and rejects unknown
# ones; CI's own CAMGATE_* settings are not for it.
for v in $(compgen -e); do
	[[ $v == CAMGATE_* ]] && unset "$v"
done
rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/camgate-cross.XXXXXX)
export DIST=$WORK/dist

results=()
failed=0
pass() { results+=("PASS  $1"); echo "PASS  $1"; }
fail() {
	results+=("FAIL  $1${2:+: $2}")
	echo "FAIL  $1${2:+: $2}"
	failed=1
}

pids=()
wine_started=
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	if [ -n "$wine_started" ]; then
		WINEPREFIX=$WORK/wine timeout 30 wineserver -k 2>/dev/null || true
	fi
	cp -r "$WORK"/logs/. "$OUT"/ 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/logs"

# ---------------------------------------------------------------------------
# Dependencies.

need=()
command -v wine >/dev/null || need+=(wine wine64)
command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null || need+=(qemu-user-static)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v ffprobe >/dev/null || need+=(ffmpeg)
command -v osslsigncode >/dev/null || need+=(osslsigncode)
command -v python3 >/dev/null || need+=(python3)
command -v zip >/dev/null || need+=(zip)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		fail "dependencies" "not root, cannot install ${need[*]}"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; } >"$WORK/logs/apt.log" 2>&1; then
		tail -20 "$WORK/logs/apt.log"
		fail "dependencies" "apt-get install ${need[*]} failed"
		exit 1
	fi
fi
echo "wine: $(wine --version 2>/dev/null); $(qemu-aarch64-static --version | head -1)"

# ---------------------------------------------------------------------------
# Helpers.

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# write_config FILE PORT DATADIR [LOGFILE]: the demo path on 127.0.0.1:PORT
# over TCP only; WebRTC, the API and the uplink off. DATADIR and LOGFILE
# are written as given (Windows paths for Wine).
write_config() {
	{
		echo "agent:"
		echo "  dataDir: '$3'"
		[ -n "${4:-}" ] && echo "  logFile: '$4'"
		echo "rtsp:"
		echo "  address: 127.0.0.1:$2"
		echo "  transports: [tcp]"
		echo "webrtc:"
		echo "  address: \"\""
		echo "api:"
		echo "  address: \"\""
		echo "uplink:"
		echo "  broker: \"\""
	} >"$1"
}

# wait_port PORT SECONDS [PID]: until 127.0.0.1:PORT accepts; fails early
# when PID exits. Polls: the process is not ours to get an event from.
wait_port() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
			return 1
		fi
		sleep 0.2
	done
	return 1
}

# probe_demo PORT LOG: decodes 3 s of the demo path; true when at least
# MIN_FRAMES video frames were decoded.
probe_demo() {
	local n
	n=$(timeout 60 ffprobe -v error -rtsp_transport tcp -select_streams v:0 -count_frames \
		-read_intervals "%+3" -show_entries stream=codec_name,nb_read_frames -of default=nw=1 \
		"rtsp://127.0.0.1:$1/demo" 2>>"$2" | tee -a "$2" | sed -n 's/^nb_read_frames=//p')
	echo "decoded ${n:-0} frames from rtsp://127.0.0.1:$1/demo" | tee -a "$2"
	[ "${n:-0}" -ge "$MIN_FRAMES" ] 2>/dev/null
}

# stop_pid PID SECONDS: SIGTERM, then wait; true when it exited in time.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	local deadline=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
	return 0
}

forget_pid() {
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
	pids=("${keep[@]}")
}

# ---------------------------------------------------------------------------
# Builds (one at a time).

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION=smoke-$COMMIT
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export VERSION COMMIT DATE
for t in windows/amd64 linux/arm64 linux/arm; do
	if packaging/cross.sh "$t" >>"$WORK/logs/build.log" 2>&1; then
		pass "build $t"
	else
		tail -20 "$WORK/logs/build.log"
		fail "build $t"
	fi
done
WIN_EXE=$DIST/build/windows_amd64/camgate.exe

# ---------------------------------------------------------------------------
# Authenticode signature (throwaway certificate), verified by osslsigncode.

if [ -f "$WIN_EXE" ]; then
	if SIGN_SELF_SIGNED=1 packaging/sign.sh "$WIN_EXE" >"$WORK/logs/sign.log" 2>&1; then
		pass "windows/amd64 signed and verified"
	else
		cat "$WORK/logs/sign.log"
		fail "windows/amd64 signed and verified"
	fi
fi

# ---------------------------------------------------------------------------
# ARM under qemu.

qemu_target() { # qemu_target GOARCH-name DIR QEMU
	local name=$1 bin=$DIST/build/$2/camgate qemu=$3
	local dir=$WORK/$2 log=$WORK/logs/$2.log port pid
	[ -f "$bin" ] || { fail "$name: demo over RTSP" "no binary"; return; }
	mkdir -p "$dir"
	port=$(free_port)
	write_config "$dir/camgate.yml" "$port" "$dir/data"
	"$qemu" "$bin" version >"$log" 2>&1
	if grep -q "${name}" "$log"; then
		pass "$name: camgate version ($(head -1 "$log"))"
	else
		fail "$name: camgate version" "$(head -1 "$log")"
	fi
	"$qemu" "$bin" run -c "$dir/camgate.yml" >>"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_port "$port" 120 "$pid"; then
		tail -20 "$log"
		fail "$name: demo over RTSP" "agent did not listen on 127.0.0.1:$port"
		stop_pid "$pid" 10
		forget_pid "$pid"
		return
	fi
	if probe_demo "$port" "$log"; then
		pass "$name: demo over RTSP"
	else
		tail -20 "$log"
		fail "$name: demo over RTSP" "fewer than $MIN_FRAMES frames decoded"
	fi
	if stop_pid "$pid" 15 && grep -q "camgate stopped" "$log"; then
		pass "$name: graceful stop on SIGTERM"
	else
		tail -5 "$log"
		fail "$name: graceful stop on SIGTERM"
	fi
	forget_pid "$pid"
}

qemu_target linux/arm64 linux_arm64 qemu-aarch64-static
qemu_target linux/arm linux_armv7 qemu-arm-static

# The sendmmsg batches (RTSP over UDP, WebRTC) hand the kernel an array of
# structs whose layout differs per architecture, and segmented messages
# carry a control message laid out per architecture too: their tests,
# built for each ARM target, run under qemu (which passes sendmmsg to the
# host's kernel, translating the array as that target's kernel would read
# it).
qemu_tests() { # qemu_tests GOARCH GOARM QEMU
	local arch=$1 arm=$2 qemu=$3 dir=$WORK/tests-$1 log=$WORK/logs/tests-$1.log
	mkdir -p "$dir"
	if ! GOARCH=$arch GOARM=$arm CGO_ENABLED=0 go test -c -o "$dir/mmsg.test" ./internal/mmsg >"$log" 2>&1 ||
		! GOARCH=$arch GOARM=$arm CGO_ENABLED=0 go test -c -o "$dir/webrtc.test" ./streaming/webrtc >>"$log" 2>&1; then
		tail -20 "$log"
		fail "linux/$arch: sendmmsg tests" "build failed"
		return
	fi
	if (cd "$dir" && "$qemu" ./mmsg.test -test.v &&
		"$qemu" ./webrtc.test -test.v -test.run 'TestBatchConnHoldsUntilRelease/ipv4|TestBatchConnFlushesAtBounds|TestBatchConnDropsWhatTheKernelRefuses|TestBatchConnDoesNotAllocate|TestBatchConnSegmentsRuns|TestBatchConnFallsBackToPlainDatagrams') >>"$log" 2>&1; then
		pass "linux/$arch: sendmmsg tests under qemu"
	else
		tail -20 "$log"
		fail "linux/$arch: sendmmsg tests under qemu"
	fi
}
qemu_tests arm64 "" qemu-aarch64-static
qemu_tests arm 7 qemu-arm-static

# ---------------------------------------------------------------------------
# windows/amd64 under Wine.

wine_tests() {
	export WINEPREFIX=$WORK/wine WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
	local log=$WORK/logs/wine.log dir=$WORK/win port pid out rc
	mkdir -p "$dir"
	wine_started=1
	if ! timeout 300 wine cmd /c exit >"$log" 2>&1; then
		tail -20 "$log"
		fail "windows/amd64: wine prefix"
		return
	fi
	# Keep a wineserver (and with it the service manager and its
	# services) up between the commands below; stopped by cleanup.
	wineserver -w
	wineserver -p
	if ! x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
		testdata/wine/processprng.c -ladvapi32 >>"$log" 2>&1; then
		tail -20 "$log"
		fail "windows/amd64: ProcessPrng shim"
		return
	fi
	# hal's Windows tests (service handler, MachineGuid, metrics through
	# gopsutil's Windows calls) on Wine's Windows API.
	if CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go test -c -o "$dir/hal.test.exe" ./hal >>"$log" 2>&1 &&
		timeout 300 wine "$dir/hal.test.exe" -test.v >"$WORK/logs/wine-hal-test.log" 2>&1; then
		pass "windows/amd64: go test ./hal under Wine"
	else
		grep -E "^(--- FAIL|FAIL|panic)|_test.go" "$WORK/logs/wine-hal-test.log" | head -20
		fail "windows/amd64: go test ./hal under Wine"
	fi

	cp "$WIN_EXE" "$dir/camgate.exe"
	local exe wdir
	exe=$(winepath -w "$dir/camgate.exe" 2>/dev/null)
	wdir=$(winepath -w "$dir" 2>/dev/null)

	out=$(timeout 120 wine "$dir/camgate.exe" version 2>>"$log")
	echo "$out" >>"$log"
	if [[ $out == *"windows/amd64"* && $out == *"$VERSION"* ]]; then
		pass "windows/amd64: camgate version ($out)"
	else
		fail "windows/amd64: camgate version" "got '$out'"
		return
	fi

	# Service manager path. Wine 8.0 lacks the "restart on non-crash
	# failures" setting, so install may fail there: then it must say so
	# and leave no half-installed service behind.
	port=$(free_port)
	write_config "$dir/service.yml" "$port" "$wdir\\data-svc" "$wdir\\service.log"
	out=$(timeout 120 wine "$dir/camgate.exe" service install -c "$wdir\\service.yml" 2>>"$log")
	rc=$?
	echo "service install (exit $rc): $out" >>"$log"
	local installed=
	if [ $rc -eq 0 ]; then
		installed=1
		pass "windows/amd64: service install reached the service manager ($out)"
	else
		local st
		st=$(timeout 120 wine "$dir/camgate.exe" service status 2>>"$log")
		if [[ $out == *"install service"* && $st == *"not installed"* ]]; then
			pass "windows/amd64: service install failed cleanly under Wine ($out)"
		else
			fail "windows/amd64: service install" "exit $rc: $out; status after: $st"
		fi
		# Register the service as install would, to test the agent under
		# the service manager all the same.
		if timeout 120 wine sc create camgate binPath= "$exe run -c $wdir\\service.yml" >>"$log" 2>&1; then
			installed=1
		else
			fail "windows/amd64: sc create"
		fi
	fi
	if [ -n "$installed" ]; then
		out=$(timeout 120 wine "$dir/camgate.exe" service start 2>>"$log")
		echo "service start: $out" >>"$log"
		if wait_port "$port" 120 && probe_demo "$port" "$log"; then
			st=$(timeout 120 wine "$dir/camgate.exe" service status 2>>"$log")
			if [[ $st == *running* ]]; then
				pass "windows/amd64: agent as a service serves the demo ($st)"
			else
				fail "windows/amd64: service status" "$st"
			fi
		else
			cat "$dir/service.log" >>"$log" 2>/dev/null
			fail "windows/amd64: agent as a service serves the demo" "$out"
		fi
		out=$(timeout 120 wine "$dir/camgate.exe" service stop 2>>"$log")
		echo "service stop: $out" >>"$log"
		if grep -q "camgate stopped" "$dir/service.log" 2>/dev/null; then
			pass "windows/amd64: graceful stop on service stop"
		else
			fail "windows/amd64: graceful stop on service stop" "$out"
		fi
		cp "$dir/service.log" "$WORK/logs/wine-service.log" 2>/dev/null
		out=$(timeout 120 wine "$dir/camgate.exe" service uninstall 2>>"$log")
		if [[ $out == *removed* ]]; then
			pass "windows/amd64: service uninstall"
		else
			fail "windows/amd64: service uninstall" "$out"
		fi
	fi

	# Foreground.
	port=$(free_port)
	write_config "$dir/camgate.yml" "$port" "$wdir\\data"
	(cd "$dir" && exec wine "$dir/camgate.exe" run -c camgate.yml) >>"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if wait_port "$port" 120 "$pid" && probe_demo "$port" "$log"; then
		pass "windows/amd64: demo over RTSP"
	else
		tail -20 "$log"
		fail "windows/amd64: demo over RTSP"
	fi
	stop_pid "$pid" 15
	forget_pid "$pid"

	wine_update
}

# post_update API_PORT URL FILE VERSION: POST /v1/agent/update for FILE
# (served at URL) with its SHA-256 and its FILE.minisig; prints the reply.
post_update() {
	python3 - "$@" <<'PY'
import hashlib, json, sys, urllib.request
port, url, path, version = sys.argv[1:5]
body = open(path, "rb").read()
req = {"url": url, "sha256": hashlib.sha256(body).hexdigest(),
       "signature": open(path + ".minisig").read(), "version": version}
r = urllib.request.Request("http://127.0.0.1:%s/v1/agent/update" % port,
                           data=json.dumps(req).encode(), headers={"Content-Type": "application/json"})
with urllib.request.urlopen(r, timeout=60) as resp:
    print(resp.status, resp.read().decode().strip())
PY
}

# wait_log FILE TEXT SECONDS: until FILE holds TEXT.
wait_log() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.5
	done
	return 1
}

# wine_update: agent.update of the Windows build in the foreground.
wine_update() {
	local dir=$WORK/win-upd srv=$WORK/win-upd-srv log=$WORK/logs/wine-update.log
	local port api hport pid hpid out key pub
	mkdir -p "$dir" "$srv"
	if ! {
		CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "-s -w -X github.com/camgate/camgate/agent.Version=$VERSION-next" \
			-o "$srv/camgate-next.exe" ./agent/cmd/camgate &&
			CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -ldflags "-X main.mode=exit1 -X main.version=$VERSION-bad" \
				-o "$srv/camgate-bad.exe" ./internal/updatetest/badagent &&
			go run ./internal/cmd/release keygen -dir "$WORK/keys" &&
			go run ./internal/cmd/release sign -key "$WORK/keys/camgate.key" "$srv/camgate-next.exe" "$srv/camgate-bad.exe"
	} >"$log" 2>&1; then
		tail -20 "$log"
		fail "windows/amd64: agent.update builds and signatures"
		return
	fi
	pub=$(sed -n 2p "$WORK/keys/camgate.pub")
	cp "$WIN_EXE" "$dir/camgate.exe"
	port=$(free_port)
	api=$(free_port)
	hport=$(free_port)
	write_config "$dir/camgate.yml" "$port" "data"
	python3 - "$dir/camgate.yml" "$api" "$pub" <<'PY'
import sys
path, api, pub = sys.argv[1:4]
text = open(path).read().replace('api:\n  address: ""', 'api:\n  address: 127.0.0.1:%s' % api)
text += "update:\n  publicKeys: [%s]\n  trialTimeout: 120s\n" % pub
open(path, "w").write(text)
PY
	(cd "$srv" && exec python3 -m http.server "$hport" --bind 127.0.0.1) >>"$log" 2>&1 &
	hpid=$!
	pids+=("$hpid")
	(cd "$dir" && exec wine "$dir/camgate.exe" run -c camgate.yml) >>"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_port "$port" 120 "$pid" || ! wait_port "$hport" 30; then
		tail -20 "$log"
		fail "windows/amd64: agent.update" "agent or file server did not start"
		return
	fi

	out=$(post_update "$api" "http://127.0.0.1:$hport/camgate-bad.exe" "$srv/camgate-bad.exe" "$VERSION-bad" 2>&1)
	echo "bad update: $out" >>"$log"
	if [[ $out == 202* ]] && wait_log "$log" "update.rolled_back" 180 && grep -q "exit status 1" "$log" &&
		wait_port "$port" 60 && probe_demo "$port" "$log"; then
		pass "windows/amd64: a candidate that exits 1 is rolled back and the agent serves again"
	else
		tail -20 "$log"
		fail "windows/amd64: rollback under Wine" "$out"
	fi

	out=$(post_update "$api" "http://127.0.0.1:$hport/camgate-next.exe" "$srv/camgate-next.exe" "$VERSION-next" 2>&1)
	echo "good update: $out" >>"$log"
	if [[ $out == 202* ]] && wait_log "$log" "update.committed" 180; then
		local ver old
		ver=$(timeout 120 wine "$dir/camgate.exe" version 2>>"$log")
		old=$(timeout 120 wine "$dir/camgate.old.exe" version 2>>"$log")
		if [[ $ver == *"$VERSION-next"* && $old == *"$VERSION "* ]] && wait_port "$port" 60 && probe_demo "$port" "$log"; then
			pass "windows/amd64: update committed in place ($ver; kept: $old) and serving"
		else
			tail -20 "$log"
			fail "windows/amd64: update in place" "camgate.exe: $ver; camgate.old.exe: $old"
		fi
	else
		tail -20 "$log"
		fail "windows/amd64: update committed under Wine" "$out"
	fi
	# The hand-over's process is not ours by PID: the prefix's wineserver
	# is stopped at cleanup, with everything it runs.
	stop_pid "$hpid" 5
	forget_pid "$hpid"
	forget_pid "$pid"
}

if [ -f "$WIN_EXE" ]; then
	wine_tests
fi

# ---------------------------------------------------------------------------
# .deb packages.

deb_checks() {
	local log=$WORK/logs/package.log deb arch ctl
	if ! PACKAGE_TARGETS="linux_arm64 linux_armv7" packaging/package.sh >"$log" 2>&1; then
		tail -20 "$log"
		fail "package: archives and .deb"
		return
	fi
	pass "package: archives and .deb ($(cd "$DIST" && ls -- *.tar.gz *.deb | tr '\n' ' '))"
	for arch in arm64 armhf; do
		deb=$(ls "$DIST"/camgate_*_"$arch".deb 2>/dev/null | head -1)
		[ -n "$deb" ] || { fail "deb $arch" "missing"; continue; }
		ctl=$WORK/deb-$arch
		dpkg-deb -I "$deb" >"$WORK/logs/deb-$arch.txt" && dpkg-deb -c "$deb" >>"$WORK/logs/deb-$arch.txt" &&
			dpkg-deb -e "$deb" "$ctl"
		local errs=()
		dpkg-deb -f "$deb" Architecture | grep -qx "$arch" || errs+=("architecture")
		dpkg-deb -f "$deb" Package | grep -qx camgate || errs+=("package name")
		dpkg-deb -f "$deb" Depends | grep -q adduser || errs+=("depends adduser")
		for f in ./usr/bin/camgate ./lib/systemd/system/camgate.service ./etc/camgate/camgate.yml; do
			grep -q " $f\$" "$WORK/logs/deb-$arch.txt" || errs+=("no $f")
		done
		grep -qx /etc/camgate/camgate.yml "$ctl/conffiles" 2>/dev/null || errs+=("camgate.yml not a conffile")
		grep -q "adduser --system" "$ctl/postinst" 2>/dev/null || errs+=("postinst does not create the user")
		grep -q "systemctl enable camgate.service" "$ctl/postinst" 2>/dev/null || errs+=("postinst does not enable the unit")
		[ -x "$ctl/prerm" ] && [ -x "$ctl/postrm" ] || errs+=("prerm/postrm missing")
		dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/camgate.service | cmp -s - packaging/camgate.service ||
			errs+=("unit differs from packaging/camgate.service")
		if [ ${#errs[@]} -eq 0 ]; then
			pass "deb $arch: files, conffile, maintainer scripts"
		else
			fail "deb $arch" "${errs[*]}"
		fi
	done
	(cd "$DIST" && sha256sum -c checksums.txt >/dev/null) && pass "package: checksums.txt verifies" ||
		fail "package: checksums.txt verifies"
}
deb_checks

# ---------------------------------------------------------------------------
echo
echo "cross smoke summary:"
printf '  %s\n' "${results[@]}" | tee "$OUT/summary.txt"
exit $failed
