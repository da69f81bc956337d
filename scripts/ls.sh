#!/usr/bin/env bash
# Lists every stack the app can define, selection by selection, with each stack's fixed monthly cost and what
# `cdk destroy` leaves behind: `cdk ls` shows only the stacks of the context it is given. The app lists them itself,
# in pure Go (IOTCERT_MODE=ls), with cdk.json's context and the sample inputs below; every synth checks that this list
# is what the app defines. Usage: scripts/ls.sh [-c key=value]...   (or make ls; with -c, the stacks of that context)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	-c) extra+=("$2"); shift 2 ;;
	*) echo "usage: scripts/ls.sh [-c key=value]..." >&2; exit 2 ;;
	esac
done
GOFLAGS= go build -o build/app .
show() { # title, context key=value...
	local title=$1; shift
	local ctx
	ctx=$(node -e 'const c = require("./cdk.json").context || {};
		for (const a of process.argv.slice(1)) { const i = a.indexOf("="); c[a.slice(0, i)] = a.slice(i + 1); }
		process.stdout.write(JSON.stringify(c));' -- "$@" ${extra[@]+"${extra[@]}"})
	printf '%s\n' "$title"
	CDK_CONTEXT_JSON=$ctx IOTCERT_MODE=ls build/app 2>&1 | sed 's/^/    /'
}
if [ ${#extra[@]} -gt 0 ]; then
	show "with cdk.json's context and -c ${extra[*]}"
	exit 0
fi
show "no selecting context: the platform stacks (deploy only the ones you want: cdk deploy <stack>)"
show "-c CSR_FILE=<csr>, -c DESIRED_TOPIC=<topic> or DESTROY=1: the cross-account stack (-c producer=<name> suffixes it)" \
	CSR_FILE=testdata/crossaccount/cross-account.csr
show "-c thing_name=<name>: one per-thing stack, named after the thing (here device1234)" thing_name=device1234
show "-c thing_names=a,b,c or -c thing_names_file=<file>: fleet stacks <fleet_name>-1..n (here testdata/thing/fleet.txt)" \
	thing_names_file=testdata/thing/fleet.txt
echo "Prices: USD list prices in us-east-1, without usage: https://aws.amazon.com/private-ca/pricing/,"
echo "https://aws.amazon.com/secrets-manager/pricing/, https://aws.amazon.com/kms/pricing/"
