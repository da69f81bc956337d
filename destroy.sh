#!/usr/bin/env bash
# The seed's decommissioning script, kept by name. An ACTIVE certificate is deactivated by the stack itself before
# CloudFormation deletes it, so no manual step comes first. Extra arguments go to cdk (e.g. -c producer=acme).
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
DESTROY=1 exec cdk destroy "$@"
