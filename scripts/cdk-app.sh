#!/usr/bin/env bash
# The app command of cdk.json: builds the Lambda binaries and the app, then runs it. Plain `cdk synth` and `cdk deploy`
# work without any other step. Node 24 from node_modules runs jsii when the project's npm packages are installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/node_modules/.bin:$PATH"
"$root/scripts/build-lambdas.sh"
cd "$root"
GOFLAGS= go build -o build/app .
exec build/app "$@"
