#!/usr/bin/env bash
# The seed's producer script, kept by name: ./create-csr.sh <topic> writes cross-account.key and cross-account.csr.
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
exec go run -C "$root" ./cmd/create-csr -dir "$PWD" "$@"
