#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a full test run: set up, then run every test
# against real servers the harness starts (MariaDB, s3rver, the GCS emulator).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Sourced, so the Node 24 it selects stays on PATH here.
. "$root/scripts/setup.sh"
cd "$root"
# Extra arguments go to vitest (e.g. a test file, or -t PATTERN).
npm test -- "$@"
