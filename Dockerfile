# syntax=docker/dockerfile:1
# idp-bridge: multi-stage build on Node.js 22 LTS. The runtime image holds production dependencies, the
# compiled JS and config/default.json only (no dev-only keys, no demo tenants: .dockerignore keeps them out of
# the build context), runs as the unprivileged `node` user, and reports health from /healthz.
# NODE_IMAGE names the base; a registry mirror or a locally built base can be given with --build-arg.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# tsc needs no install script (the only one in the tree is esbuild's, for tsx): nothing is compiled or downloaded.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    SEED_FILE= \
    SP_SIGNING_KEY_FILE= \
    SP_SIGNING_CERT_FILE=
WORKDIR /app
COPY --from=prod-deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root config/default.json ./config/default.json
USER node
EXPOSE 3000
# Production refuses to start without (see README, "Docker"): Redis (REDIS_URL, REDIS_SENTINELS +
# REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES), an https PUBLIC_URL, real SECRET_KEYS, ADMIN_API_KEY (a real
# key, or "" for tenant keys only) and the OpenID Provider's RSA signing key, shared by every instance: mount
# it and set OIDC_SIGNING_KEY_FILE. WORKERS defaults to one process per CPU the container sees; under a CPU
# quota set WORKERS to the quota. To sign SAML requests and enable single logout, mount a key pair and set
# SP_SIGNING_KEY_FILE / SP_SIGNING_CERT_FILE.
HEALTHCHECK --interval=15s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# The tracing preload hooks http/express/ioredis before they load; it loads nothing unless OTEL_* ask
# for traces (README, "Traces").
CMD ["node", "--import", "./dist/observability/tracing-preload.js", "dist/main.js"]
