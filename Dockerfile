# syntax=docker/dockerfile:1
# Nexus: `docker build -t nexus .` (README, "Operating Nexus" > "Docker").
# Build stage: the dev dependencies compile dist/ (tsc, esbuild), then are pruned.
# Runtime stage: production dependencies and dist/ only, a non-root user, the data dir a volume.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 and pkcs11js compile from source when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Exactly what the lockfile pins; install scripts wait for the sources (prepare builds dist/).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm rebuild --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NEXUS_DATA_DIR=/var/lib/nexus \
    NEXUS_MTLS_ADDR=0.0.0.0:8553 \
    NEXUS_OIDC_ADDR=0.0.0.0:8554
# A fixed numeric id, so `runAsNonRoot` and volume ownership can be checked from outside.
RUN groupadd --system --gid 10001 nexus \
 && useradd --system --uid 10001 --gid nexus --home-dir /var/lib/nexus --shell /usr/sbin/nologin nexus \
 && mkdir -p /var/lib/nexus \
 && chown nexus:nexus /var/lib/nexus \
 && chmod 0700 /var/lib/nexus
WORKDIR /opt/nexus
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
USER 10001:10001
# Database, audit trail, dev PKI (and the root key in the default file seal: prefer NEXUS_ROOT_KEY_FILE on a secret mount).
VOLUME ["/var/lib/nexus"]
EXPOSE 8553 8554
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["node", "deploy/docker/healthcheck.mjs"]
# SIGTERM: stop accepting, finish in-flight requests, exit 0.
STOPSIGNAL SIGTERM
CMD ["node", "dist/bin/nexus.js"]
