# syntax=docker/dockerfile:1
#
# backup-agent container image.
#   docker build -t backup-agent .
#   docker run --rm --init -v /etc/backup-agent:/etc/backup-agent:ro -v backups:/var/lib/backup-agent \
#     -e SHOP_DB_PASSWORD backup-agent run-now
# The default command is `daemon`; one-shot commands work too (run-now, list, status, …).

# ---- build: compile TypeScript, then keep only the production dependencies ------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script (no native addons); skipping them also skips building the
# optional native modules of the test-only dev dependencies.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime ----------------------------------------------------------------------------------
FROM node:24-bookworm-slim

LABEL org.opencontainers.image.title="backup-agent" \
      org.opencontainers.image.description="Self-hosted backup agent for MySQL and MariaDB" \
      org.opencontainers.image.licenses="Apache-2.0"

# mariadb-client: mariadb-dump, mariadb (logical backups, restores, binlog replay) and
# mariadb-binlog (binlog capture, point-in-time recovery); mariadb-backup: physical backups and
# mbstream (physical restores); mariadb-server-core: mariadbd, started privately by
# `restore --datadir --verify` and by point-in-time restores into a datadir (never as a service);
# zstd: restores by hand inside the container; age: encryption (encryption: blocks) and decryption;
# ca-certificates: TLS to S3/GCS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-client mariadb-backup mariadb-server-core zstd age ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system backup-agent \
 && useradd --system --gid backup-agent --home-dir /var/lib/backup-agent --shell /usr/sbin/nologin backup-agent \
 && install -d -m 0750 -o backup-agent -g backup-agent /var/lib/backup-agent \
 && install -d -m 0755 /etc/backup-agent

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config.example.yaml ./config.example.yaml

ENV NODE_ENV=production \
    AGENT_CONFIG=/etc/backup-agent/agent.yaml

USER backup-agent
# Default local storage and the directory `agent download` writes into by default.
WORKDIR /var/lib/backup-agent

# The daemon's health endpoint (daemon.listen_port, default 9187). fetch is built into Node: no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9187/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The same node flags as the `agent` bin's shebang (see src/main.ts): a small young generation.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--expose-gc", "/app/dist/main.js"]
CMD ["daemon"]
