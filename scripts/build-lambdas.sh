#!/usr/bin/env bash
# Builds every Lambda handler under lambdas/ with one `go build` for provided.al2023 on arm64, stripped and without the
# RPC shim, then lays each binary out as <out>/assets/<name>/bootstrap: the asset the GoFunction construct deploys.
# -trimpath and -buildvcs=false keep the bytes, and so the asset hashes, identical across checkouts and commits that do
# not touch a handler. Usage: scripts/build-lambdas.sh [out-dir]   (default: build/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build}
cd "$root"
mkdir -p "$out/bin" "$out/assets"
# One build for all handlers: the packages share most of their dependencies.
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 GOFLAGS= go build -trimpath -buildvcs=false -ldflags="-s -w" -tags lambda.norpc \
	-o "$out/bin/" ./lambdas/...
for bin in "$out"/bin/*; do
	[ -f "$bin" ] || continue
	name=$(basename "$bin")
	[ -d "lambdas/$name" ] || { rm -f "$bin"; continue; } # a handler that was removed
	mkdir -p "$out/assets/$name"
	# Copy only when the bytes changed, so an unchanged handler keeps its file (and asset hash) untouched.
	if ! cmp -s "$bin" "$out/assets/$name/bootstrap"; then
		cp "$bin" "$out/assets/$name/bootstrap"
		# Set-up says which changed (LAMBDA_CHANGES names a file to list them in).
		[ -z "${LAMBDA_CHANGES:-}" ] || echo "$name" >>"$LAMBDA_CHANGES"
	fi
done
