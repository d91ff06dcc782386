#!/usr/bin/env bash
# Authenticode-signs the Windows binaries with osslsigncode and verifies
# the signatures.
#
#   SIGN_KEY=key.pem SIGN_CERT=cert.pem packaging/sign.sh [EXE...]
#
# EXE defaults to $DIST/build/windows_*/camgate.exe (DIST default dist). SIGN_KEY is a PEM
# private key (SIGN_KEY_PASS its passphrase when encrypted), SIGN_CERT the
# PEM certificate chain. SIGN_TIMESTAMP_URL adds an RFC 3161 timestamp so
# signatures outlive the certificate. Verification trusts SIGN_CA (default:
# the system store).
#
# SIGN_SELF_SIGNED=1 makes a throwaway self-signed code-signing certificate
# with openssl and trusts it for verification: for CI, which checks that
# signing works, not who signed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v osslsigncode >/dev/null || { echo "sign: osslsigncode not installed (apt-get install osslsigncode)" >&2; exit 1; }

exes=("$@")
if [ ${#exes[@]} -eq 0 ]; then
	shopt -s nullglob
	exes=("${DIST:-dist}"/build/windows_*/camgate.exe)
	shopt -u nullglob
fi
[ ${#exes[@]} -gt 0 ] || { echo "sign: no Windows binaries; run packaging/cross.sh first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "${SIGN_SELF_SIGNED:-}" = 1 ]; then
	SIGN_KEY=$tmp/key.pem
	SIGN_CERT=$tmp/cert.pem
	SIGN_CA=$SIGN_CERT
	openssl req -x509 -newkey rsa:3072 -nodes -days 2 -subj "/CN=camgate test signing" \
		-addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=codeSigning" \
		-keyout "$SIGN_KEY" -out "$SIGN_CERT" 2>/dev/null
	echo "sign: throwaway self-signed certificate (not for release)"
fi
: "${SIGN_KEY:?sign: set SIGN_KEY and SIGN_CERT (or SIGN_SELF_SIGNED=1)}"
: "${SIGN_CERT:?sign: set SIGN_KEY and SIGN_CERT (or SIGN_SELF_SIGNED=1)}"

for exe in "${exes[@]}"; do
	args=(sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n camgate -in "$exe" -out "$tmp/signed.exe")
	[ -n "${SIGN_KEY_PASS:-}" ] && args+=(-pass "$SIGN_KEY_PASS")
	[ -n "${SIGN_TIMESTAMP_URL:-}" ] && args+=(-ts "$SIGN_TIMESTAMP_URL")
	osslsigncode "${args[@]}" >/dev/null
	mv "$tmp/signed.exe" "$exe"
	vargs=(verify -in "$exe")
	[ -n "${SIGN_CA:-}" ] && vargs+=(-CAfile "$SIGN_CA")
	if ! out=$(osslsigncode "${vargs[@]}" 2>&1); then
		echo "$out" >&2
		echo "sign: FAIL verify $exe" >&2
		exit 1
	fi
	echo "signed and verified $exe"
done
