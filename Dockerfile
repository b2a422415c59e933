# syntax=docker/dockerfile:1
# idp-bridge: multi-stage build; the runtime image holds production dependencies and compiled JS only,
# runs as the unprivileged `node` user, and reports health from /healthz.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
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
# Production refuses to start without Redis (REDIS_URL, REDIS_SENTINELS + REDIS_SENTINEL_NAME, or
# REDIS_CLUSTER_NODES), an https PUBLIC_URL and real SECRET_KEYS (see README). WORKERS defaults to one
# process per CPU the container sees; under a CPU quota set WORKERS to the quota.
# To sign SAML requests and enable single logout, mount a key pair and set SP_SIGNING_KEY_FILE/SP_SIGNING_CERT_FILE.
# The OpenID Provider needs its RSA signing key (shared by every instance): mount it and set OIDC_SIGNING_KEY_FILE.
HEALTHCHECK --interval=15s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
