#!/usr/bin/env bash
# Measures synth time: the floor (a one-resource Go CDK app) and the whole app in each of its selections, warm (jsii
# cache and Go build cache populated), in the same run, with the same CLI flags. Prints one line per case: the median
# and min/max of N runs. Needs nothing beyond set-up (awk and gzip are part of every Debian base system).
# Usage: scripts/bench.sh [runs]   (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
runs=${1:-5}
scripts/build-lambdas.sh
go build -o build/app . && go build -o build/floorapp ./testdata/floorapp

time_synth() { # label, app, context...
	local label=$1 app=$2; shift 2
	local ctx=() t0 t1 times=()
	for c in "$@"; do ctx+=(-c "$c"); done
	cdk synth --quiet --no-notices --app "$app" -o build/bench.out "${ctx[@]}" >/dev/null 2>&1 # warm-up
	for _ in $(seq "$runs"); do
		rm -rf build/bench.out
		t0=$(date +%s%N)
		cdk synth --quiet --no-notices --app "$app" -o build/bench.out "${ctx[@]}" >/dev/null 2>&1
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000000)))
	done
	printf '%s\n' "${times[@]}" | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "%-40s median %6d ms  min %6d  max %6d  (%d runs)\n", l, a[int((NR+1)/2)], a[1], a[NR], NR}'
}

echo "synth (warm, cdk synth --quiet; the CloudFormation validator at its default, warnings, unless said)"
time_synth "floor: one-resource Go app" build/floorapp
time_synth "app: platform (4 stacks: vending, multi-region primary and replica, rotation)" build/app
time_synth "app: cross-account (CSR_FILE)" build/app CSR_FILE=testdata/crossaccount/cross-account.csr
time_synth "app: thing (thing_name)" build/app thing_name=device1234
time_synth "app: platform, cdk-nag off" build/app nag=false
time_synth "app: platform + CFN validator as errors" build/app @aws-cdk/core:validateAgainstDefaultRules=true
for n in 10 100 1000; do
	seq -f "sensor-%05g" 1 "$n" >build/fleet-$n.txt
	stacks=$(( (n + 59) / 60 )) # the app's suggestion: about 60 things per stack
	time_synth "fleet: $n things ($stacks stacks)" build/app thing_names_file=build/fleet-$n.txt fleet_stacks=$stacks
done

echo
echo "Lambda binaries (linux/arm64, -s -w, lambda.norpc); compressed: deflate -9 via gzip, what a Lambda .zip holds less about 100 bytes of headers"
for d in build/assets/*/; do
	name=$(basename "$d")
	size=$(stat -c %s "$d/bootstrap")
	zipped=$(gzip -9 -c "$d/bootstrap" | wc -c)
	awk -v n="$name" -v s="$size" -v z="$zipped" 'BEGIN { printf "%-14s binary %6.2f MB   compressed %5.2f MB\n", n, s / 1048576, z / 1048576 }'
done
