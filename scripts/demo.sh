#!/usr/bin/env bash
# The main job on an embedded default: set up, then `agent demo` — a throwaway MariaDB with sample
# data is backed up to a local directory, listed, restored into a second throwaway server and
# compared table by table. Extra arguments go to `agent demo` (e.g. --keep).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Sourced, so the Node 24 it selects stays on PATH here.
. "$root/scripts/setup.sh"
exec node "$root/dist/main.js" demo "$@"
