#!/usr/bin/env bash
# Prints the exported API of the library module (tools/apidump, a go/types dump), one
# declaration per line, sorted. CI compares it with api/v1.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/tools"
GOWORK=off go run ./apidump -C "$root" ./...
