#!/usr/bin/env bash
# Measures the README's two commands the way a newcomer meets them: in a fresh clone of this repository (no
# node_modules, no build/, no cdk.out; the machine's Go module, Go build and npm caches as they are), `make synth`,
# then `CI=true make test`, and a mistyped stack name after set-up. Prints wall, user and system time of each, and the
# load average before and after, since on a shared machine the wall time says little without it.
# Usage: scripts/bench-feedback.sh [synth|test|all]   (default all; `make bench-feedback`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
case $what in synth | test | all) ;; *) echo "usage: scripts/bench-feedback.sh [synth|test|all]" >&2; exit 2 ;; esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
git clone -q "$root" "$dir/clone"
cd "$dir/clone"
load() { cut -d' ' -f1-3 /proc/loadavg; }
measure() { # label, command...
	local label=$1 l0 log=$dir/out.log
	shift
	l0=$(load)
	/usr/bin/time -o "$dir/time" -f '%e %U %S' "$@" >"$log" 2>&1 || {
		echo "$label failed; its output:" >&2
		tail -30 "$log" >&2
		exit 1
	}
	read -r wall user sys <"$dir/time"
	printf '%-34s wall %7.1f s  user %7.1f s  sys %6.1f s  load before %s, after %s  (%s cores)\n' \
		"$label" "$wall" "$user" "$sys" "$l0" "$(load)" "$(nproc)"
	grep -E '^(phases:|build |==> )|done in' "$log" | sed 's/^/    /' || true
}
if [ "$what" != test ]; then
	measure "make synth (fresh clone)" make synth
	# A mistyped stack name: judged before any Lambda build or synth.
	measure "cdk synth CertVendng-dev (typo)" bash -c 'PATH=$PWD/node_modules/.bin:$PATH; cdk synth CertVendng-dev 2>&1 | grep -q "did you mean \"CertVending-dev\""'
fi
if [ "$what" != synth ]; then
	measure "CI=true make test" env CI=true make test
fi
