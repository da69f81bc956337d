#!/usr/bin/env bash
# The app command of cdk.json: builds the app, judges the configuration (context from the command line, cdk.json and
# the environment, and the stack names asked for) without starting jsii, then builds the Lambda binaries and runs the
# app. A mistyped key or stack name costs a Go build, not a Lambda build and a synth. Plain `cdk synth` and
# `cdk deploy` work without any other step. Node 24 from node_modules runs jsii when the project's npm packages are
# installed. IOTCERT_PREBUILT=1 skips both builds (the synth check builds once for all its cases, which run in parallel).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
cd "$root"
if [ "${IOTCERT_PREBUILT:-}" = 1 ]; then
	exec build/app "$@"
fi
GOFLAGS= go build -o build/app .
IOTCERT_MODE=check build/app
"$root/scripts/build-lambdas.sh"
exec build/app "$@"
