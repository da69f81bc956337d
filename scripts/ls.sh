#!/usr/bin/env bash
# Lists every stack the app can define, selection by selection: `cdk ls` shows only the stacks of the context it is
# given, and with no context that is the platform stacks alone. Usage: scripts/ls.sh   (or make ls)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
show() { # title, cdk context...
	local title=$1; shift
	local ctx=(-c nag=false)
	for c in "$@"; do ctx+=(-c "$c"); done
	printf '%s\n' "$title"
	rm -rf build/ls.out
	cdk ls --no-notices -o build/ls.out "${ctx[@]}" 2>&1 | sed 's/^/    /'
}
show "no selecting context: the platform stacks (cdk deploy <stack> or --all)"
show "-c CSR_FILE=<csr>, -c DESIRED_TOPIC=<topic> or DESTROY=1: the cross-account stack (-c producer=<name> suffixes it)" \
	CSR_FILE=testdata/crossaccount/cross-account.csr
show "-c thing_name=<name>: one per-thing stack, named after the thing (here device1234)" thing_name=device1234
show "-c thing_names=a,b,c or -c thing_names_file=<file>: fleet stacks <fleet_name>-1..n (here testdata/thing/fleet.txt)" \
	thing_names_file=testdata/thing/fleet.txt
