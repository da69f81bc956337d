#!/bin/bash
# Certificate rotation, phase 1: make a new private key and a CSR for it on this host. The key never leaves the host;
# the CSR (subject CN = the host id) is printed on standard output for the rotation workflow to read.
# Values arrive only as environment variables set by SSM Agent from the document's checked parameters.
set -eu
set -o pipefail
umask 077
# @path-safety@ (scripts/safety.sh is inserted here)

host="$SSM_HostId"
keydir="$SSM_KeyDir"
alg="$SSM_KeyAlgorithm"

# The same rules as the document's allowedPattern, checked again here.
if ! [[ "$host" =~ ^(i-([A-Za-z0-9_]{8}|[A-Za-z0-9_]{17})|mi-[A-Za-z0-9_]{17})$ ]]; then
	echo "refusing host id: not an SSM managed node id" >&2
	exit 2
fi
if ! [[ "$keydir" =~ ^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$ ]]; then
	echo "refusing key directory: not an absolute path of safe segments" >&2
	exit 2
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "openssl not found" >&2
	exit 1
fi

# A missing directory is made root-only; an existing one (and every directory above it) must be safe from other
# users: one they could write (the sample's /tmp) would let them replace the key files.
safe_dir "key directory" "$keydir"

tmp="$(mktemp "$keydir/.$host-new.key.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
case "$alg" in
RSA_2048) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp" ;;
EC_prime256v1) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp" ;;
*)
	echo "refusing key algorithm: use RSA_2048 or EC_prime256v1" >&2
	exit 2
	;;
esac
chmod 0400 "$tmp"
mv -f "$tmp" "$keydir/$host-new.key"
openssl req -new -sha256 -key "$keydir/$host-new.key" -subj "/CN=$host" -outform PEM
